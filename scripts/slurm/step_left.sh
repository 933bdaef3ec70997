#!/bin/bash
# step_left.sh SCRIPT ARGS...: run a batch script (bash SCRIPT ARGS...) in this allocation, then
# check that nothing of the srun steps it started outlived it, before the job's end would clean
# up: no step but the batch step in squeue, no kbench process-group worker of this job alive.
# Prints "nothing left of the srun steps of job J" or what is left (exit 1).
set -euo pipefail
bash "$@"
steps="$(squeue --steps --noheader --format=%i --jobs="$SLURM_JOB_ID" | grep -v '\.batch$' || true)"
[ -z "$steps" ] || { echo "steps left: $steps"; exit 1; }
for proc in /proc/[0-9]*; do
  grep -qa kbench.running.worker "$proc/cmdline" 2>/dev/null || continue
  environ="$(tr '\0' '\n' <"$proc/environ" 2>/dev/null || true)"
  if grep -qx "SLURM_JOB_ID=$SLURM_JOB_ID" <<<"$environ" && grep -q "^KBENCH_N_PROCESSES=" <<<"$environ"; then
    echo "worker left: process ${proc#/proc/}"
    exit 1
  fi
done
echo "nothing left of the srun steps of job $SLURM_JOB_ID"
