"""One functional environment interface (`envs.core`) over JAX-native environments (PointMaze-Left/Right,
Pendulum, probes), Gymnasium MuJoCo (`envs.gym_adapter`, host-side) and Brax (`envs.brax_adapter`).
`envs.registry.make(name)` builds any of them by name."""
