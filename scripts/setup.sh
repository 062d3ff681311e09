#!/usr/bin/env bash
# Sets up everything a run or the test suite needs, on a fresh clone of a fresh machine:
#   - Debian's dataset-fashion-mnist (IDX files under /usr/share/datasets/fashion-mnist/), when apt works;
#   - a virtual environment in .venv (Python >= 3.11; 3.12 preferred) with the project and its dev extras;
#   - with `--with-slurm` (the test command's; never by default, so the quick start starts no daemon), as
#     root with apt-get: a local single-node SLURM cluster for the sweep tests (scripts/slurm_local.sh).
# Idempotent: a second run only checks. Set CLJAX_PYTHON to choose the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
with_slurm=0
for arg in "$@"; do
  case "$arg" in
    --with-slurm) with_slurm=1 ;;
    *) echo "setup.sh: unknown argument '$arg' (allowed: --with-slurm)" >&2; exit 2 ;;
  esac
done

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's dataset-fashion-mnist"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's dataset-fashion-mnist (sudo)"
    sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "setup: no apt-get; Fashion-MNIST will be read from --config.data_dir or downloaded with --config.download=True" >&2
  fi
fi

works() { "$1" -c 'import sys; assert sys.version_info >= (3, 11)' >/dev/null 2>&1; }
find_python() {
  if [ -n "${CLJAX_PYTHON:-}" ]; then echo "$CLJAX_PYTHON"; return; fi
  # Newest jax needs Python >= 3.12; 3.11 still works with jax 0.10.x.
  for candidate in python3.12 python3.13 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[23]*/bin/python3 \
                   python3.11 python3; do
    if works "$candidate"; then echo "$candidate"; return; fi
  done
  echo "setup: no Python >= 3.11 found; set CLJAX_PYTHON" >&2; exit 1
}

if [ ! -x .venv/bin/python ]; then
  py=$(find_python)
  echo "setup: creating .venv with $("$py" --version)"
  "$py" -m venv .venv
fi
# On Python 3.12 (CI's) the versions are pinned by constraints-py312.txt, so a commit installs the same
# packages on every day; other Pythons get the newest within pyproject.toml's ranges.
constraints=()
if .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
  constraints=(-c constraints-py312.txt)
fi
if ! .venv/bin/python -c 'import cl, jax, flax, optax, orbax.checkpoint, sklearn, pytest, tensorboardX' 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ] || [ constraints-py312.txt -nt .venv/.installed ]; then
  echo "setup: installing the project and its dependencies into .venv ${constraints[*]:+(pinned: ${constraints[1]})}"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q "${constraints[@]}" -e '.[dev]'
  touch .venv/.installed
fi

# A single-node SLURM cluster for the sweep tests (scripts/slurm_local.sh), only when asked for
# (`--with-slurm`) and we are root on a Debian machine: the SLURM tests run against it and skip without it.
if [ "$with_slurm" = 1 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    bash scripts/slurm_local.sh start
  else
    echo "setup: --with-slurm needs root and apt-get; the SLURM tests will skip" >&2
  fi
fi
