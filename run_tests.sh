#!/usr/bin/env bash
# The test suite, from a fresh clone: builds its own virtualenv, installs kbench with the
# TensorFlow CPU wheel, the JAX and torch CPU backends and the dev tools, then runs pytest.
# Extra arguments go to pytest (e.g. `./run_tests.sh -m slow` for the heavy cases).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/bootstrap.sh "cpu,dev,jax,torch"
# One pytest worker per core, at most 4 (pytest-xdist): most of the suite is Keras tracing,
# single-threaded; KBENCH_TEST_WORKERS=1 runs in one process.
WORKERS="${KBENCH_TEST_WORKERS:-$(( $(nproc) < 4 ? $(nproc) : 4 ))}"
# The project's own modules compiled once, here: where PYTHONDONTWRITEBYTECODE is set (as in
# some CI images) every process the suite starts (each sweep's worker, each CLI subprocess)
# would otherwise compile them again; the import system reads bytecode that exists either way.
"$PY" -m compileall -q -j 0 kbench architectures tests >/dev/null
exec "$PY" -m pytest -q -n "$WORKERS" "$@"
