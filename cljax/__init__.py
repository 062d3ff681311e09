"""The runtime both halves share (`cl/`, `irl/`) and the scripts use: orbax checkpoints, metric
writers, config checks, device meshes, multi-host, preemption, sweeps, divergence checks, timing and
the console (one-line errors, the scripts' common flags).

Nothing in here knows about a particular method. Named for the project (`cljax`), so that installing
it never shadows a user's own `experiment` or `runtime` package (the name before this release was
`experiment`).
"""
