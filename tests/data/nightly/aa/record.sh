#!/usr/bin/env bash
# How the A/A pairs of this directory were recorded (run by hand; the tests only read the CSVs):
# back-to-back `kbench sweep` runs of one commit, default rounds, warm-up and steps, each pair
# written as pairNN_a.csv then pairNN_b.csv, with the load average before each sweep in
# conditions.log. Usage: record.sh FIRST LAST [OUTDIR]   (e.g. record.sh 1 10)
set -euo pipefail
cd "$(dirname "$0")/../../../.."
PY="${PY:-/work/main/.venv/bin/python}"
OUT="${3:-tests/data/nightly/aa}"
CACHE="$(mktemp -d)"
for i in $(seq "$1" "$2"); do
  pair=$(printf "pair%02d" "$i")
  for side in a b; do
    echo "$(date -u +%FT%TZ) $pair $side start loadavg $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/conditions.log"
    PYTHONPATH="$PWD" "$PY" -m kbench sweep lenet5,resnet18 --input-size 64 --batch-sizes 1,8 --modes infer,train \
      --no-progress --profile-cache "$CACHE" --out "$OUT/${pair}_$side.csv"
    echo "$(date -u +%FT%TZ) $pair $side end loadavg $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/conditions.log"
  done
done
