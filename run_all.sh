#!/usr/bin/env bash
# The nightly job, from a fresh clone: builds its own virtualenv, profiles every registered
# model (results/profile-<date>.csv) and runs the default throughput sweep
# (results/sweep-<date>.csv) configured by sweeps/nightly.toml within its time budget.
#
#   ./run_all.sh                 profile all + the small default sweep (< 20 min on a 2-core CPU)
#   ./run_all.sh --full          profile all + sweep every model (sweeps/full.toml; a GPU job)
#   ./run_all.sh [--full] -- ARGS  extra ARGS go to `kbench sweep` (e.g. --backend jax --time-budget 600)
#
# Rows are appended as each model/configuration finishes; a rerun on the same day keeps an
# the finished rows of both CSVs and resumes instead of duplicating rows. The whole job is
# bounded by NIGHTLY_BUDGET_S (default 1140 s = 19 min): the sweep gets what profiling left.
set -euo pipefail
cd "$(dirname "$0")"
START_S="$(date +%s)"
NIGHTLY_BUDGET_S="${NIGHTLY_BUDGET_S:-1140}"
CONFIG="nightly"
TAG="sweep"
while [ $# -gt 0 ]; do
  case "$1" in
    --full) CONFIG="full"; TAG="sweep-full"; shift ;;
    --) shift; break ;;
    *) echo "usage: run_all.sh [--full] [-- kbench sweep args]" >&2; exit 2 ;;
  esac
done
source scripts/bootstrap.sh "cpu"
DATE="$(date -u +%Y-%m-%d)"
mkdir -p results
PROFILE_CSV="results/profile-$DATE.csv"
# --resume: a rerun on the same day profiles only the models not yet in the file.
# `profile` exits 1 when some model failed; its rows record that, the sweep still runs.
"$PY" -m kbench profile all --format csv --out "$PROFILE_CSV" --resume \
  || echo "profile: some models failed (see $PROFILE_CSV)" >&2
echo "wrote $PROFILE_CSV"
SWEEP_CSV="results/$TAG-$DATE.csv"
BUDGET_ARGS=()
if [ "$CONFIG" = "nightly" ]; then
  LEFT=$(( NIGHTLY_BUDGET_S - ($(date +%s) - START_S) ))
  [ "$LEFT" -lt 60 ] && LEFT=60
  BUDGET_ARGS=(--time-budget "$LEFT")
fi
"$PY" -m kbench sweep --config "$CONFIG" --out "$SWEEP_CSV" --resume "${BUDGET_ARGS[@]}" "$@"
echo "wrote $SWEEP_CSV"
