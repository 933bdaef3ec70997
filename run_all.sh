#!/usr/bin/env bash
# The nightly job, from a fresh clone: builds its own virtualenv, profiles every registered
# model (results/profile-<date>.csv), runs the default throughput sweep configured by
# kbench/running/sweeps/nightly.toml (results/sweep-<UTC time>.csv), then `kbench nightly`: compares it with the
# previous run of this machine, updates the history and the report (results/report/index.html)
# and prints a one-paragraph summary. Every configuration the comparison calls slower is measured
# again (interleaved with a control, in a fresh worker) and reported only when that confirms it.
#
#   ./run_all.sh                 profile all + the small default sweep (< 20 min on a 2-core CPU)
#   ./run_all.sh --full          profile all + sweep every model (kbench/running/sweeps/full.toml; a GPU job)
#   ./run_all.sh [--full] -- ARGS  extra ARGS go to `kbench sweep` (e.g. --backend jax --time-budget 600)
#
# Exit code: 0 for a clean night, 1 when a configuration is slower than in the previous run and the
# re-measurement confirms it (a regression), 2 on bad input, 3 on an internal error of kbench.
# Profile failures do not stop the sweep.
#
# Each run writes its own sweep CSV, named by its UTC start time, so that a second run on the
# same day is compared with the first. The profile CSV is one per day: a rerun on the same day
# keeps the finished rows and profiles only the models not yet in it. The whole job is bounded
# by NIGHTLY_BUDGET_S (default 1140 s = 19 min): the sweep gets what profiling left minus
# NIGHTLY_CONFIRM_S (default 240 s), kept for re-measuring suspected regressions, which get what
# the sweep left (at least 60 s).
set -euo pipefail
cd "$(dirname "$0")"
START_S="$(date +%s)"
NIGHTLY_BUDGET_S="${NIGHTLY_BUDGET_S:-1140}"
NIGHTLY_CONFIRM_S="${NIGHTLY_CONFIRM_S:-240}"
CONFIG="nightly"
TAG="sweep"
REPORT="results/report"
while [ $# -gt 0 ]; do
  case "$1" in
    --full) CONFIG="full"; TAG="sweep-full"; REPORT="results/report-full"; shift ;;
    --) shift; break ;;
    *) echo "usage: run_all.sh [--full] [-- kbench sweep args]" >&2; exit 2 ;;
  esac
done
source scripts/bootstrap.sh "cpu"
DATE="$(date -u +%Y-%m-%d)"
RUN_TIME="$(date -u +%Y-%m-%dT%H%M%SZ)"
mkdir -p results
PROFILE_CSV="results/profile-$DATE.csv"
# --resume: a rerun on the same day profiles only the models not yet in the file.
# `profile` exits 1 when some model failed; its rows record that, the sweep still runs.
"$PY" -m kbench profile all --format csv --out "$PROFILE_CSV" --resume \
  || echo "profile: some models failed (see $PROFILE_CSV)" >&2
echo "wrote $PROFILE_CSV"
SWEEP_CSV="results/$TAG-$RUN_TIME.csv"
BUDGET_ARGS=()
CONFIRM_ARGS=()
if [ "$CONFIG" = "nightly" ]; then
  LEFT=$(( NIGHTLY_BUDGET_S - NIGHTLY_CONFIRM_S - ($(date +%s) - START_S) ))
  [ "$LEFT" -lt 60 ] && LEFT=60
  BUDGET_ARGS=(--time-budget "$LEFT")
fi
"$PY" -m kbench sweep --config "$CONFIG" --out "$SWEEP_CSV" "${BUDGET_ARGS[@]}" "$@"
echo "wrote $SWEEP_CSV"
if [ "$CONFIG" = "nightly" ]; then
  CONFIRM=$(( NIGHTLY_BUDGET_S - ($(date +%s) - START_S) ))
  [ "$CONFIRM" -lt 60 ] && CONFIRM=60
  CONFIRM_ARGS=(--confirm-budget "$CONFIRM")
fi
# Compare, confirm, history, report and the summary; its exit code (0 clean, 1 a confirmed
# regression, 2 bad input, 3 internal error) is the job's.
exec "$PY" -m kbench nightly "$SWEEP_CSV" --results results --tag "$TAG" --report "$REPORT" "${CONFIRM_ARGS[@]}"
