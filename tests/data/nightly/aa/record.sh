#!/usr/bin/env bash
# How the runs of this directory were recorded (run by hand; the tests only read the CSVs):
# back-to-back `kbench sweep` runs of one commit, default rounds, warm-up and steps, with the load
# average before and after each sweep in conditions.log.
#   record.sh FIRST LAST [OUTDIR]       A/A pairs: pairNN_a.csv then pairNN_b.csv (e.g. record.sh 1 10)
#   INJECT=resnet18:8:train=0.4 record.sh FIRST LAST [OUTDIR]
#                                       injectNN.csv: the same sweep with that configuration really
#                                       slowed by the fraction (../slowdown/sitecustomize.py)
#   PRIORITY=-20 ...                    the sweeps' session at that scheduler priority (run as root,
#                                       under setsid: a session of its own), so that other jobs of a
#                                       shared machine take little of the CPUs while it measures
set -euo pipefail
if [ -n "${PRIORITY:-}" ]; then echo "$PRIORITY" > /proc/self/autogroup; renice -n "$PRIORITY" -p $$ > /dev/null; fi
cd "$(dirname "$0")/../../../.."
PY="${PY:-/work/main/.venv/bin/python}"
OUT="${3:-tests/data/nightly/aa}"
CACHE="$(mktemp -d)"
sweep() {  # sweep NAME [PYTHONPATH extra]
  echo "$(date -u +%FT%TZ) $1 start${PRIORITY:+ priority $PRIORITY} loadavg $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/conditions.log"
  PYTHONPATH="$PWD${2:+:$2}" "$PY" -m kbench sweep lenet5,resnet18 --input-size 64 --batch-sizes 1,8 \
    --modes infer,train --no-progress --profile-cache "$CACHE" --out "$OUT/$1.csv"
  echo "$(date -u +%FT%TZ) $1 end loadavg $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/conditions.log"
}
for i in $(seq "$1" "$2"); do
  if [ -n "${INJECT:-}" ]; then
    KBENCH_TEST_SLOWDOWN="$INJECT" sweep "$(printf "inject%02d" "$i")" "$PWD/tests/data/nightly/slowdown"
  else
    for side in a b; do sweep "$(printf "pair%02d_%s" "$i" "$side")"; done
  fi
done
