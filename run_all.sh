#!/usr/bin/env bash
# The nightly job, from a fresh clone: builds its own virtualenv, profiles every registered
# model and writes results/profile-<date>.csv (rows appended as each model finishes).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/bootstrap.sh "cpu"
DATE="$(date -u +%Y-%m-%d)"
mkdir -p results
"$PY" -m kbench profile all --format csv --out "results/profile-$DATE.csv"
echo "wrote results/profile-$DATE.csv"
