r"""Rolls out an expert's deterministic policy into a demonstration file (format: irl/demos.py).

  python scripts/collect_demos.py --env Hopper-v5 --expert experts/Hopper-v5 --episodes 25 \
      --out demos/Hopper-v5
  python scripts/collect_demos.py --env PointMaze-Left --expert scripted --episodes 25 \
      --out demos/PointMaze-Left

`--expert` is `scripted` (PointMaze, Pendulum) or an expert directory written by
scripts/train_expert.py. Writes `<out>.npz` (obs, action, next_obs, reward, terminated, truncated,
episode) and `<out>.json` (provenance: env and version, seed, expert, return mean/std, episodes,
checksum).
"""

from absl import app, flags

from cljax import console

_ENV = flags.DEFINE_string('env', None, 'Environment name (envs.registry).')
_EXPERT = flags.DEFINE_string('expert', None, '"scripted" or an expert directory.')
_EPISODES = flags.DEFINE_integer('episodes', 25, 'Number of deterministic episodes.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the environment resets.')
_OUT = flags.DEFINE_string('out', None, 'Output path without extension.')
flags.mark_flags_as_required(['env', 'expert', 'out'])


def env_version(name: str) -> str:
  from envs import registry

  if registry.is_jax_env(name):
    return 'cljax jax-native v1'
  import gymnasium
  import mujoco

  return f'gymnasium {gymnasium.__version__} / mujoco {mujoco.__version__}'


def main(argv):
  del argv
  import jax

  from envs import registry
  from envs.core import EnvError
  from irl import demos, experts

  if _EPISODES.value < 1:
    raise app.UsageError(f'--episodes must be >= 1, got {_EPISODES.value}')
  try:
    is_jax = registry.is_jax_env(_ENV.value)
    env = (
      registry.make(_ENV.value)
      if is_jax
      else registry.make(_ENV.value, num_envs=1, seed=_SEED.value)
    )
  except EnvError as e:  # an unknown environment name: the message names the flag
    raise app.UsageError(f'--env: {e}') from None
  try:
    policy, record = experts.load_policy(_EXPERT.value, env.spec)
  except EnvError as e:
    raise app.UsageError(str(e)) from None
  if is_jax:
    arrays = experts.rollout_jax(env, policy, jax.random.key(_SEED.value), _EPISODES.value)
  else:
    arrays = experts.rollout_host(env, policy, _SEED.value, _EPISODES.value)
    env.close()
  meta = demos.save(
    _OUT.value,
    arrays,
    env=env.spec.name,
    env_version=env_version(_ENV.value),
    expert=_EXPERT.value,
    seed=_SEED.value,
    extra={'expert_record': {k: v for k, v in record.items() if k != 'sac_config'}},
  )
  print(
    f'{env.spec.name}: {meta["num_episodes"]} episodes, {meta["num_transitions"]} transitions, '
    f'return {meta["return_mean"]:.1f} ± {meta["return_std"]:.1f} -> {_OUT.value}.npz'
  )


if __name__ == '__main__':
  console.run(main)
