#!/usr/bin/env bash
# Create (or reuse) the project virtualenv and install kbench with the given extras.
# Usage: source scripts/bootstrap.sh "cpu,dev"   -> sets $PY to the venv's python.
set -euo pipefail
KBENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${KBENCH_VENV:-$KBENCH_ROOT/.venv}"
EXTRAS="${1:-cpu}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
# Re-install only when the packaging or the requested extras changed since the last install.
STAMP="$VENV/.kbench-install-$(echo "$EXTRAS" | tr ',' '-')"
if [ ! -f "$STAMP" ] || [ "$KBENCH_ROOT/setup.cfg" -nt "$STAMP" ]; then
  if [[ ",$EXTRAS," == *",torch,"* ]]; then
    # The CPU build of torch, pinned: an open range would pull a multi-GB CUDA build.
    "$PY" -m pip install -qq --disable-pip-version-check "torch==${KBENCH_TORCH_VERSION:-2.13.0}"
  fi
  "$PY" -m pip install -qq --disable-pip-version-check -e "$KBENCH_ROOT[$EXTRAS]"
  touch "$STAMP"
fi
export PY
