"""Gymnasium MuJoCo tasks on the host, behind the method names of `envs/core.py`.

MuJoCo through Gymnasium is not JAX: the environment steps on the host over NumPy batches and the
agent's jitted functions are called between steps (the thin host loop of STYLE.md). `GymEnv` keeps
the contract of the JAX interface where it can:

  env = make_gym('Hopper-v5', num_envs=4, seed=0)
  obs = env.reset()                                   # [num_envs, obs_dim]
  out = env.step(action)                              # action [num_envs, act_dim]
  out.next_obs, out.reward, out.terminated, out.truncated   # the transition, true next observation
  out.obs                                             # where to act from next (reset if it ended)

It auto-resets like `envs.core.step_autoreset` and returns a `GymStep` with the same field names as
`envs.core.AutoResetStep` (less `state`, which lives inside the Gymnasium objects). `terminated`
marks a true terminal state, `truncated` the time limit (bootstrap from `next_obs`); the two are
exclusive: a terminal state reached on the last allowed step counts as terminated only, as in Brax's
`EpisodeWrapper`, because bootstrapping must stop there.

Tasks (`GYM_ENVS`): Gymnasium's `Hopper-v5`, `HalfCheetah-v5`, `Walker2d-v5`, `Ant-v5`, and the
dynamics-shift Ant variants `CustomAnt`, `AmputatedAnt`, `BigAnt` of OPIRL's reward-transfer
experiments (Hoshino et al. 2022, "OPIRL: Sample efficient off-policy inverse reinforcement
learning via distribution matching", ICRA, arXiv 2109.04307; spec in shared/reference/irl.md
section 2.2), in the spirit of AIRL's disabled-ant transfer (Fu, Luo & Levine 2018). The variants
are Gymnasium's own Ant-v5 with a modified MJCF (built by `ant_variant_xml` from the installed
`ant.xml`, never a copied file); see `ANT_VARIANTS` for the exact changes and `make_gym` for how
they differ from OPIRL's AIRL-style ant.
"""

import hashlib
import os
import tempfile
import xml.etree.ElementTree as ET
from typing import Any, NamedTuple

import numpy as np

from envs.core import BoxSpec, EnvError, EnvSpec

BASE_ENVS = ('Hopper-v5', 'HalfCheetah-v5', 'Walker2d-v5', 'Ant-v5')


class AntMorphology(NamedTuple):
  """An Ant-v5 MJCF edit. Leg i (1..4) is the chain of bodies actuated by `hip_i` and `ankle_i`.

  Lengths are the per-axis extent `d` of a leg segment, i.e. the MJCF `fromto="0 0 0 ±d ±d 0"` the
  AIRL/OPIRL builders and Gymnasium's ant.xml both use (the segment is `d·√2` long). `thigh` is the
  segment between the hip and ankle joints (stock 0.2), `ankle` the foot segment (stock 0.4); the
  fixed segment from the torso to the hip joint is never changed. Masses and inertias follow the
  geometry (the MJCF sets `inertiafromgeom`), so a shorter leg is also lighter.
  """

  gear: float
  thigh: tuple[float, float, float, float]
  ankle: tuple[float, float, float, float]

  @property
  def healthy_z_range(self) -> tuple[float, float]:
    """Ant-v5's healthy torso heights (0.2, 1.0), the upper bound raised by the longest foot's
    added length `(ankle - 0.4)·√2` so a longer-legged ant standing tall is not "unhealthy" (and
    its episode not ended); shorter legs keep the stock range."""
    added = max(0.0, max(self.ankle) - 0.4) * np.sqrt(2.0)
    return (0.2, round(1.0 + added, 4))


# The back-left leg is leg 3 (hip_3/ankle_3, at -x -y): Gymnasium's body `back_leg`, the leg AIRL's
# crippled-ant builder names `back_left_leg`.
BACK_LEFT_LEG = 3

ANT_VARIANTS: dict[str, AntMorphology] = {
  # AIRL's lower-gear ant (it flips less often than at gear 150): gear 30, stock legs.
  'CustomAnt': AntMorphology(gear=30.0, thigh=(0.2, 0.2, 0.2, 0.2), ankle=(0.4, 0.4, 0.4, 0.4)),
  # Gear 30 with the back-left leg halved: thigh 0.1 (stock 0.2), ankle 0.2 (stock 0.4).
  'AmputatedAnt': AntMorphology(gear=30.0, thigh=(0.2, 0.2, 0.1, 0.2), ankle=(0.4, 0.4, 0.2, 0.4)),
  # Stock gear 150 with every foot doubled (ankle 0.8, as in the notes; thighs stay 0.2, the same
  # edit on all four legs). Its healthy range is (0.2, 1.5657), see `healthy_z_range`.
  'BigAnt': AntMorphology(gear=150.0, thigh=(0.2, 0.2, 0.2, 0.2), ankle=(0.8, 0.8, 0.8, 0.8)),
}

GYM_ENVS = BASE_ENVS + tuple(ANT_VARIANTS)


def _find(parent: ET.Element, tag: str, **attrs) -> ET.Element:
  for elem in parent.iter(tag):
    if all(elem.get(k) == v for k, v in attrs.items()):
      return elem
  raise EnvError(
    f"Gymnasium's ant.xml has no <{tag} {attrs}>: its layout changed; "
    'ANT_VARIANTS assumes bodies aux_1..aux_4 with a thigh geom and a foot body each'
  )


def _fmt(values) -> str:
  return ' '.join(f'{float(v):.6g}' for v in values)


def _set_leg(thigh_body: ET.Element, thigh: float, ankle: float) -> None:
  """Sets the thigh and foot extents of one leg, keeping each segment's direction."""
  thigh_geom = thigh_body.find('geom')
  foot_body = thigh_body.find('body')
  foot_geom = foot_body.find('geom') if foot_body is not None else None
  if thigh_geom is None or foot_geom is None:
    raise EnvError(
      f"Gymnasium's ant.xml: body {thigh_body.get('name')} lacks a thigh geom or foot "
      'body; ANT_VARIANTS cannot edit it'
    )
  # Direction signs (±1 per axis) from the stock segment, so mirrored legs stay mirrored.
  sign = np.sign(np.array(thigh_geom.get('fromto').split(), dtype=float)[3:])
  thigh_geom.set('fromto', _fmt([0, 0, 0, *(sign * thigh)]))
  foot_body.set('pos', _fmt(sign * thigh))
  foot_sign = np.sign(np.array(foot_geom.get('fromto').split(), dtype=float)[3:])
  foot_geom.set('fromto', _fmt([0, 0, 0, *(foot_sign * ankle)]))


def ant_variant_xml(name: str) -> str:
  """The MJCF text of an Ant variant: Gymnasium's installed Ant-v5 `ant.xml` with every motor's
  gear set to `ANT_VARIANTS[name].gear` and each leg's thigh/foot extents set (see
  `AntMorphology`). Deterministic in `name` and the installed Gymnasium."""
  if name not in ANT_VARIANTS:
    raise EnvError(f'name must be one of {tuple(ANT_VARIANTS)}, got {name!r}')
  import gymnasium.envs.mujoco as gym_mujoco  # deferred: MuJoCo loads only for its environments

  morph = ANT_VARIANTS[name]
  base = os.path.join(os.path.dirname(gym_mujoco.__file__), 'assets', 'ant.xml')
  root = ET.parse(base).getroot()
  root.set('model', name)
  motors = list(_find(root, 'actuator').iter('motor'))
  if len(motors) != 8:
    raise EnvError(f"Gymnasium's ant.xml has {len(motors)} motors, ANT_VARIANTS assumes 8")
  for motor in motors:
    motor.set('gear', f'{morph.gear:g}')
  for leg in range(1, 5):
    _set_leg(_find(root, 'body', name=f'aux_{leg}'), morph.thigh[leg - 1], morph.ankle[leg - 1])
  return ET.tostring(root, encoding='unicode')


def ant_variant_xml_path(name: str) -> str:
  """Writes `ant_variant_xml(name)` to a content-addressed file under the temp directory (once;
  atomic, so concurrent processes are safe) and returns its absolute path."""
  text = ant_variant_xml(name)
  digest = hashlib.sha256(text.encode()).hexdigest()[:16]
  cache = os.path.join(tempfile.gettempdir(), 'cljax-mjcf')
  os.makedirs(cache, exist_ok=True)
  path = os.path.join(cache, f'{name}-{digest}.xml')
  if not os.path.exists(path):
    fd, tmp = tempfile.mkstemp(dir=cache, suffix='.xml')
    with os.fdopen(fd, 'w') as f:
      f.write(text)
    os.replace(tmp, path)
  return path


class GymStep(NamedTuple):
  """One batched step; the fields of `envs.core.AutoResetStep` less `state`."""

  obs: np.ndarray  # [n, obs_dim] to act from next (the reset observation where done)
  next_obs: np.ndarray  # [n, obs_dim] the transition's true next observation (store this)
  reward: np.ndarray  # [n] float32
  terminated: np.ndarray  # [n] bool, true terminal state: do not bootstrap
  truncated: np.ndarray  # [n] bool, time limit and not terminated: bootstrap from next_obs
  info: dict  # Gymnasium's step info stacked over envs, plus episode_return/length


def _box(space) -> BoxSpec:
  return BoxSpec(
    shape=tuple(space.shape),
    low=np.asarray(space.low, np.float32),
    high=np.asarray(space.high, np.float32),
    dtype=np.float32,
  )


def _stack_info(infos: list[dict]) -> dict[str, np.ndarray]:
  keys = set(infos[0]).intersection(*infos[1:])
  return {k: np.stack([np.asarray(info[k]) for info in infos]) for k in sorted(keys)}


class GymEnv:
  """`num_envs` independent Gymnasium environments stepped in lock-step on the host.

  Environment i is seeded with `seed + i` on a seeded reset (Gymnasium's vector-env convention), so
  a batch equals separate single environments seeded `seed, seed + 1, ...`. Later automatic resets
  draw from each environment's own generator. Observations and rewards are float32 (MuJoCo computes
  in float64); actions are passed to MuJoCo as float64 unclipped (the models clamp controls).
  """

  def __init__(self, name: str, envs: list, seed: int):
    self.num_envs = len(envs)
    self._envs = envs
    self._seed = seed
    self._needs_reset = True
    first = envs[0]
    self.spec = EnvSpec(
      name=name,
      observation=_box(first.observation_space),
      action=_box(first.action_space),
      max_episode_steps=int(first.spec.max_episode_steps),
    )
    self._episode_return = np.zeros(self.num_envs, np.float64)
    self._episode_length = np.zeros(self.num_envs, np.int64)

  def reset(self, seed: int | None = None) -> np.ndarray:
    """Resets every environment; returns obs [num_envs, obs_dim]. `seed=None` on the first call
    uses the `seed` given to `make_gym`; later unseeded resets continue each generator."""
    if seed is None and self._needs_reset and self._seed is not None:
      seed = self._seed
    self._seed = None
    obs = [
      env.reset(seed=None if seed is None else seed + i)[0] for i, env in enumerate(self._envs)
    ]
    self._needs_reset = False
    self._episode_return[:] = 0.0
    self._episode_length[:] = 0
    return np.stack(obs).astype(np.float32)

  def step(self, action) -> GymStep:
    """Steps every environment with `action` [num_envs, act_dim] and resets those whose episode
    ended. `info` holds Gymnasium's per-step info stacked over environments, and
    `episode_return`/`episode_length`: the undiscounted return and length of each transition's
    episode so far, so at `terminated | truncated` they are the finished episode's totals."""
    action = np.asarray(action)
    want = (self.num_envs,) + tuple(self.spec.action.shape)
    if action.shape != want:
      raise EnvError(
        f'{self.spec.name}: action must have shape [num_envs, act_dim] = {want}, got {action.shape}'
      )
    if self._needs_reset:
      raise EnvError(f'{self.spec.name}: call reset() before step()')
    next_obs, obs, reward, terminated, truncated, infos = [], [], [], [], [], []
    for env, a in zip(self._envs, action.astype(np.float64)):
      o, r, term, trunc, info = env.step(a)
      next_obs.append(o)
      reward.append(r)
      terminated.append(bool(term))
      # A terminal state on the last allowed step is terminal: never bootstrap through it.
      truncated.append(bool(trunc) and not term)
      infos.append(info)
      obs.append(env.reset()[0] if term or trunc else o)
    reward = np.asarray(reward, np.float64)
    done = np.asarray(terminated) | np.asarray(truncated)
    self._episode_return += reward
    self._episode_length += 1
    info = _stack_info(infos)
    info['episode_return'] = self._episode_return.astype(np.float32)
    info['episode_length'] = self._episode_length.copy()
    self._episode_return[done] = 0.0
    self._episode_length[done] = 0
    return GymStep(
      obs=np.stack(obs).astype(np.float32),
      next_obs=np.stack(next_obs).astype(np.float32),
      reward=reward.astype(np.float32),
      terminated=np.asarray(terminated),
      truncated=np.asarray(truncated),
      info=info,
    )

  def close(self) -> None:
    for env in self._envs:
      env.close()


def make_gym(name: str, num_envs: int = 1, seed: int = 0, **kwargs: Any) -> GymEnv:
  """A batch of `num_envs` Gymnasium MuJoCo environments `name` (one of `GYM_ENVS`).

  `kwargs` go to `gymnasium.make`: `max_episode_steps` (default 1000 for every task) and the v5
  options (`ctrl_cost_weight`, `terminate_when_unhealthy`, `reset_noise_scale`, ...).

  The Ant variants are Gymnasium's Ant-v5 on `ant_variant_xml(name)`, with all Ant-v5 reward and
  observation options kept, so they differ from OPIRL's AIRL-style CustomAnt (irl.md 2.2):
    * reward: Ant-v5's x-velocity + 1 healthy bonus - 0.5‖a‖² - 5e-4·Σclip(cfrc_ext, -1, 1)²,
      where OPIRL's is x-velocity - 0.01‖a‖² - 5e-4·Σclip(cfrc_ext)² - 1 if flipped (torso z < 0.2);
    * episode end: Ant-v5 terminates when the torso leaves `healthy_z_range` ((0.2, 1.0); BigAnt
      (0.2, 1.5657), see `AntMorphology.healthy_z_range`), where OPIRL's ant never terminates and
      only pays the flip penalty. Both cap episodes at 1000 steps. Pass
      `terminate_when_unhealthy=False, ctrl_cost_weight=0.01, healthy_reward=0` to come closer
      (the flip penalty itself is not available);
    * observation: Ant-v5's qpos[2:] (13), qvel (14) and clipped cfrc_ext without the world body
      (78), 105 values, where OPIRL's has the world body's (always zero) forces too;
    * body: no AIRL "eyes" (geoms that also add mass through `inertiafromgeom`), and the initial
      pose is Ant-v5's (torso at 0.75, legs flat) with Ant-v5's reset noise.

  Raises EnvError for an unknown name, `num_envs < 1`, or `xml_file` given for an Ant variant.
  """
  if name not in GYM_ENVS:
    raise EnvError(f'name must be one of {GYM_ENVS}, got {name!r}')
  if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
    raise EnvError(f'num_envs must be a positive int, got {num_envs!r}')
  import gymnasium  # deferred: MuJoCo loads only for its environments

  if name in ANT_VARIANTS:
    if 'xml_file' in kwargs:
      raise EnvError(f'{name}: xml_file is fixed by the variant; use Ant-v5 for a custom MJCF')
    kwargs = {
      'healthy_z_range': ANT_VARIANTS[name].healthy_z_range,
      **kwargs,
      'xml_file': ant_variant_xml_path(name),
    }
    gym_id = 'Ant-v5'
  else:
    gym_id = name
  envs = [gymnasium.make(gym_id, **kwargs) for _ in range(num_envs)]
  return GymEnv(name, envs, seed)
