#!/usr/bin/env bash
# The PointMaze-Goals stream's experts and demonstrations (issue 17), as PointMaze-Left's were made:
# each task's scripted expert, evaluated and exported to experts/PointMaze-Goals-<k>/, then 25 of its
# deterministic episodes (seed 0) in demos/PointMaze-Goals-<k>.{npz,json}.
#   bash scripts/collect_goal_demos.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for k in 0 1 2 3 4 5; do
  env="PointMaze-Goals-$k"
  "$python" scripts/train_expert.py --config "configs/rl/sac.py:$env" --workdir "$work/$env" \
    --export_dir "experts/$env"
  "$python" scripts/collect_demos.py --env "$env" --expert "experts/$env" --episodes 25 --seed 0 \
    --out "demos/$env"
done
