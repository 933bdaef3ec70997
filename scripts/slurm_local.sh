#!/usr/bin/env bash
# The README's Slurm job array, run for real on this host: a one-node Slurm cluster of its own.
#
#   bash scripts/slurm_local.sh [MERGED.csv]
#
# 1. Installs Debian's slurm-wlm and munge if they are absent (apt-get; needs root, as does the
#    rest: the daemons run as root, SlurmUser=root). No service is started by the install.
# 2. Writes a minimal slurm.conf in a temporary state directory: one node (this host, with the
#    CPUs and memory slurmd detects), one partition, no cgroups (proctrack/linuxproc, task/none),
#    no accounting, free ports; starts munged (with its own key and socket), slurmctld and slurmd
#    directly (no systemd) and waits until the node is idle.
# 3. Fills the profile cache for the plan (kbench sweep --profile-only), as the README does before
#    the array, then submits scripts/slurm/sweep_array.sbatch unchanged except for its sizes: the
#    plan (the script's arguments: the tiny PLAN below), --array=1-TASKS, --gpus=0 (this host has
#    none) and its log path; then scripts/slurm/merge.sbatch with --dependency=afterany on the
#    array, and waits for both (polling squeue, so that a Ctrl-C acts at once).
#    It also submits scripts/slurm/sweep_processes.sbatch (one model over the tasks of one srun
#    step, kbench sweep --processes 2 --launcher srun) sized for this host: --nodes=1,
#    --ntasks-per-node=2, --gpus-per-node=0 and the tiny PROCESS_PLAN (lenet5 over 2 simulated
#    devices, 1 per task);
#    and the same job with a hang injected (KBENCH_FAULT_INJECT) and --timeout 20, followed in its
#    allocation by a look for anything left of its srun step (scripts/slurm/step_left.sh).
# 4. Checks that every array task, the merge job and both process-group jobs COMPLETED with exit
#    code 0 (scontrol show job; slurmctld keeps finished jobs for MinJobAge, 300 s), that the
#    merged CSV covers the plan exactly once (scripts/slurm/check_merge.py: the same keys as
#    kbench's own unsharded plan of the same arguments, no duplicates, disjoint shards, every row
#    ok), that the process-group job wrote one ok row with n_devices 2 and n_processes 2, and that
#    the hung one wrote a timeout row, "all 2 processes killed", with nothing of its step left.
# 5. On any exit (success, failure, Ctrl-C) cancels its jobs, stops the daemons it started and
#    removes its state directory. MERGED.csv, if given, receives a copy of the merged CSV.
#
# Prints one summary line on stdout, progress and diagnostics on stderr; exits 0 only when every
# check passes. Environment: KBENCH_PYTHON (the Python with kbench's dependencies; default: the
# repository's .venv, created by scripts/bootstrap.sh), SLURM_LOCAL_TASKS (array tasks, default 3),
# SLURM_LOCAL_TIMEOUT (seconds for the jobs, default 1500).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KEEP="${1:+$(realpath -m -- "$1")}"
cd "$REPO"
TASKS="${SLURM_LOCAL_TASKS:-3}"
LIMIT="${SLURM_LOCAL_TIMEOUT:-1500}"
STATE=""
POLICY=/usr/sbin/policy-rc.d
OWN_POLICY=""  # set while this script's own policy-rc.d is in place (during apt-get install)
# The tiny plan: 2 models x 2 batch sizes x 2 modes = 8 configurations in 4 groups (a group, one
# model and mode, never spans two shards), so 3 array tasks all get work.
# shellcheck disable=SC2054  # commas inside kbench's arguments
PLAN=(--models lenet5,resnet18 --input-size 32 --batch-sizes 1,2 --modes infer,train
      --backend tensorflow --warmup 1 --iters 2 --rounds 2 --timeout 300)
# One model over 2 tasks of one srun step, 1 simulated CPU device each (lenet5 is in PLAN: its
# profile is in the cache).
PROCESS_PLAN=(lenet5 --backend jax --input-size 32 --batch-sizes 4 --modes train --devices 2
              --warmup 1 --iters 2 --rounds 2)
START=$SECONDS

say() { echo "slurm_local: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

[[ "$TASKS" =~ ^[1-9][0-9]*$ ]] || fail "SLURM_LOCAL_TASKS=$TASKS is not a positive integer"
[ "$(id -u)" = 0 ] || fail "run as root: it installs packages and runs slurmctld/slurmd as root (SlurmUser=root)"

# ---------------------------------------------------------------------------- cleanup, on any exit
DAEMONS=()  # "name:pid", in start order

stop_pid() {  # stop_pid PID: TERM, up to 15 s, then KILL
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 30); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? i entry proc pid
  trap - EXIT INT TERM HUP
  set +e
  [ -z "$OWN_POLICY" ] || rm -f "$POLICY"
  if [ "${#DAEMONS[@]}" -gt 0 ] && [ -n "${SLURM_CONF:-}" ]; then
    if [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
      say "cancelling the jobs still queued or running"
      scancel --quiet --user=root 2>/dev/null
      for i in $(seq 60); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.5; done
    fi
  fi
  for (( i=${#DAEMONS[@]}-1; i>=0; i-- )); do  # slurmd, slurmctld, then munged
    entry="${DAEMONS[$i]}"
    stop_pid "${entry#*:}"
  done
  # Whatever this cluster started and Slurm did not stop (job steps outlive slurmd): every process
  # whose environment names this cluster's slurm.conf, by its process id.
  if [ -n "$STATE" ]; then
    for proc in /proc/[0-9]*; do
      pid="${proc#/proc/}"
      [ "$pid" != "$$" ] && [ "$pid" != "$BASHPID" ] || continue
      if { tr '\0' '\n' <"$proc/environ"; } 2>/dev/null | grep -qxF "SLURM_CONF=$STATE/slurm.conf"; then
        say "stopping process $pid left by the cluster"
        stop_pid "$pid"
      fi
    done
    rm -rf "$STATE"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

show_logs() {  # the tails of the jobs' and the daemons' logs, on stderr, after a failure
  local f
  for f in "$STATE"/logs/* "$STATE"/log/*.log "$STATE"/log/*.out; do
    [ -s "$f" ] || continue
    # a daemon's stderr only when its log file is empty (it failed before opening it)
    [[ "$f" != *.out || "$f" == "$STATE"/logs/* ]] || [ ! -s "${f%.out}.log" ] || continue
    echo "----- ${f#"$STATE"/} (last 30 lines)" >&2
    tail -n 30 "$f" >&2
  done
}

# ---------------------------------------------------------------------------- 1. packages
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
   || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge (apt-get)"
  # A policy-rc.d for the duration of the install keeps the packages from starting their services.
  if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$POLICY" && chmod 755 "$POLICY" && OWN_POLICY=1
  fi
  installed=0
  (export DEBIAN_FRONTEND=noninteractive
   apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge) >&2 || installed=$?
  if [ -n "$OWN_POLICY" ]; then rm -f "$POLICY"; OWN_POLICY=""; fi
  [ "$installed" = 0 ] || fail "apt-get install slurm-wlm munge failed (exit $installed)"
fi

# ---------------------------------------------------------------------------- kbench
if [ -z "${KBENCH_PYTHON:-}" ]; then
  source scripts/bootstrap.sh cpu  # sets $PY: the repository's .venv, created if absent
  KBENCH_PYTHON="$PY"
fi
PY="$KBENCH_PYTHON"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"  # this tree, in every job too (sbatch exports the environment)

# ---------------------------------------------------------------------------- state
STATE="$(mktemp -d "${TMPDIR:-/tmp}/kbench-slurm.XXXXXX")"
chmod 700 "$STATE"
mkdir -p "$STATE"/{munge,ctld,slurmd,log,logs,shards,bin}

# ---------------------------------------------------------------------------- 2. the cluster
read -r CTLD_PORT SLURMD_PORT < <("$PY" -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
NODE_LINE="$(slurmd -C | head -n 1)"  # what slurmd detects here: NodeName=... CPUs=N ... RealMemory=MB
CPUS="$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$NODE_LINE")"
MEM_MB="$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$NODE_LINE")"
[ -n "$CPUS" ] && [ -n "$MEM_MB" ] || fail "cannot read CPUs and RealMemory from 'slurmd -C': $NODE_LINE"

MUNGE_SOCKET="$STATE/munge/munge.socket"
dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$STATE/munge/munge.key"

export SLURM_CONF="$STATE/slurm.conf"  # the clients (sbatch, squeue, ...) read this cluster's conf
cat > "$SLURM_CONF" <<EOF
# A one-node cluster for scripts/slurm_local.sh (removed when it exits).
ClusterName=kbench-local
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF

say "starting munged, slurmctld and slurmd ($CPUS CPUs, $MEM_MB MB; state in $STATE)"
# Each daemon in a session of its own: a Ctrl-C at the terminal reaches this script, whose cleanup
# cancels the jobs through slurmctld first, and not the daemons themselves.
setsid munged --foreground --force --socket="$MUNGE_SOCKET" --key-file="$STATE/munge/munge.key" \
  --pid-file="$STATE/munge/munged.pid" --seed-file="$STATE/munge/munged.seed" \
  --log-file="$STATE/log/munged.log" 2>>"$STATE/log/munged.log" &
DAEMONS+=("munged:$!")
for i in $(seq 40); do [ -S "$MUNGE_SOCKET" ] && break; sleep 0.25; done
munge --socket="$MUNGE_SOCKET" -n </dev/null | unmunge --socket="$MUNGE_SOCKET" >/dev/null \
  || { show_logs; fail "munged does not answer on $MUNGE_SOCKET"; }
setsid slurmctld -D -f "$SLURM_CONF" >>"$STATE/log/slurmctld.out" 2>&1 &
DAEMONS+=("slurmctld:$!")
setsid slurmd -D -N localhost -f "$SLURM_CONF" >>"$STATE/log/slurmd.out" 2>&1 &
DAEMONS+=("slurmd:$!")
NODE_STATE=""
POLICY=/usr/sbin/policy-rc.d
OWN_POLICY=""  # set while this script's own policy-rc.d is in place (during apt-get install)
for i in $(seq 120); do
  NODE_STATE="$(sinfo -h -n localhost -o %T 2>/dev/null || true)"
  [ "$NODE_STATE" = idle ] && break
  sleep 0.5
done
[ "$NODE_STATE" = idle ] || { show_logs; fail "the node is not idle after 60 s (state: ${NODE_STATE:-none})"; }
say "node localhost idle ($((SECONDS - START)) s after the start)"

# ---------------------------------------------------------------------------- 3. the jobs
# The array script's paths, pointed into the state directory (see its header).
if [ -x "$(dirname "$PY")/kbench" ]; then
  KBENCH="$(dirname "$PY")/kbench"
  export KBENCH
else
  printf '#!/bin/sh\nexec "%s" -m kbench "$@"\n' "$PY" > "$STATE/bin/kbench"
  chmod 755 "$STATE/bin/kbench"
  export KBENCH="$STATE/bin/kbench"
fi
export KBENCH_SHARDS="$STATE/shards" KBENCH_PROFILE_CACHE="$STATE/profile-cache" \
       KBENCH_MERGED="$STATE/sweep-merged.csv"

say "filling the profile cache (kbench sweep --profile-only)"
"$KBENCH" sweep "${PLAN[@]}" --profile-only --profile-cache "$KBENCH_PROFILE_CACHE" >&2 \
  || fail "kbench sweep --profile-only failed"

ARRAY_JOB="$(sbatch --parsable --array="1-$TASKS" --gpus=0 --output="$STATE/logs/%A_%a.out" \
             scripts/slurm/sweep_array.sbatch "${PLAN[@]}")" || { show_logs; fail "sbatch of the array refused"; }
ARRAY_JOB="${ARRAY_JOB%%;*}"
MERGE_JOB="$(sbatch --parsable --dependency="afterany:$ARRAY_JOB" --output="$STATE/logs/merge-%j.out" \
             scripts/slurm/merge.sbatch)" || { show_logs; fail "sbatch of the merge refused"; }
MERGE_JOB="${MERGE_JOB%%;*}"
say "submitted array job $ARRAY_JOB (tasks 1-$TASKS) and merge job $MERGE_JOB (afterany:$ARRAY_JOB)"
PROCESS_SIZE=(--nodes=1 --ntasks-per-node=2 --gpus-per-node=0)
PROCESS_JOB="$(KBENCH_OUT="$STATE/processes.csv" sbatch --parsable "${PROCESS_SIZE[@]}" \
               --output="$STATE/logs/processes-%j.out" scripts/slurm/sweep_processes.sbatch \
               "${PROCESS_PLAN[@]}" --timeout 300)" || { show_logs; fail "sbatch of the process-group job refused"; }
HANG_JOB="$(KBENCH_OUT="$STATE/processes-hang.csv" KBENCH_FAULT_INJECT="lenet5:4:train=hang" \
            sbatch --parsable "${PROCESS_SIZE[@]}" --output="$STATE/logs/processes-hang-%j.out" \
            scripts/slurm/step_left.sh scripts/slurm/sweep_processes.sbatch "${PROCESS_PLAN[@]}" --timeout 20)" \
  || { show_logs; fail "sbatch of the hung process-group job refused"; }
PROCESS_JOB="${PROCESS_JOB%%;*}" HANG_JOB="${HANG_JOB%%;*}"
say "submitted process-group job $PROCESS_JOB and the hung one, $HANG_JOB (2 tasks of one srun step each)"
# Polling squeue (rather than sbatch --wait) keeps a Ctrl-C immediate.
DEADLINE=$((SECONDS + LIMIT))
SEEN=""
while :; do
  # pending, running and completing jobs (this cluster has no others)
  QUEUE="$(squeue -h -o '%i:%T' 2>&1)" || { show_logs; fail "squeue failed: $QUEUE"; }
  QUEUE="$(tr '\n' ' ' <<<"$QUEUE" | sed 's/ *$//')"  # one line
  [ -n "$QUEUE" ] || break
  [ "$QUEUE" = "$SEEN" ] || say "queue: $QUEUE"
  SEEN="$QUEUE"
  [ "$SECONDS" -lt "$DEADLINE" ] || { show_logs; fail "the jobs did not finish within $LIMIT s (SLURM_LOCAL_TIMEOUT)"; }
  sleep 2
done
for log in "$STATE"/logs/*.out; do  # each job's last line: rows written by the task, the merge
  say "${log##*/}: $(tail -n 1 "$log")"
done

# ---------------------------------------------------------------------------- 4. the checks
# Finished jobs stay in slurmctld's memory for MinJobAge (300 s): one line per array task.
JOB_LINES="$(for job in "$ARRAY_JOB" "$MERGE_JOB" "$PROCESS_JOB" "$HANG_JOB"; do scontrol -o show job "$job"; done)"
DONE_JOBS="$(grep -c 'JobState=COMPLETED .*ExitCode=0:0' <<<"$JOB_LINES" || true)"
if [ "$DONE_JOBS" != "$((TASKS + 3))" ]; then
  show_logs
  awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^(JobId|ArrayTaskId|JobState|ExitCode)=/) printf "%s ", $i; print "" }' \
    <<<"$JOB_LINES" >&2
  fail "$DONE_JOBS of $TASKS array tasks, 1 merge job and 2 process-group jobs completed with exit code 0"
fi
# The process-group rows: one ok row of 2 devices in 2 processes; the hung group's timeout row.
PROCESS_ROWS="$("$PY" - "$STATE/processes.csv" "$STATE/processes-hang.csv" <<'PY'
import csv, sys
ok, hung = ([dict(r) for r in csv.DictReader(open(path))] for path in sys.argv[1:])
problems = []
if len(ok) != 1 or (ok[0]["status"], ok[0]["n_devices"], ok[0]["n_processes"]) != ("ok", "2", "2"):
    problems.append(f"the process-group job's rows are not one ok row of 2 devices in 2 processes: {ok}")
if len(hung) != 1 or hung[0]["status"] != "timeout" or "all 2 processes killed" not in hung[0]["error"]:
    problems.append(f"the hung job's rows are not one timeout row with its 2 processes killed: {hung}")
if problems:
    sys.exit("\n".join(problems))
row = ok[0]
print(f"{row['model']} b{row['batch_size']} {row['mode']} {row['status']}, n_devices {row['n_devices']}, "
      f"n_processes {row['n_processes']}, {float(row['samples_per_s']):.1f} samples/s; hung group: "
      f"{hung[0]['status']}, 2 processes killed")
PY
)" || { show_logs; fail "the process-group jobs' rows fail the checks above"; }
grep -qx "nothing left of the srun steps of job $HANG_JOB" "$STATE"/logs/processes-hang-"$HANG_JOB".out \
  || { show_logs; fail "something of the hung job's srun step was left (its log above)"; }
SHARD_FILES=()
for k in $(seq "$TASKS"); do
  [ -s "$KBENCH_SHARDS/shard-$k.csv" ] || { show_logs; fail "array task $k wrote no $KBENCH_SHARDS/shard-$k.csv"; }
  SHARD_FILES+=("$KBENCH_SHARDS/shard-$k.csv")
done
COVERAGE="$("$PY" scripts/slurm/check_merge.py "$KBENCH_MERGED" "${SHARD_FILES[@]}" -- "${PLAN[@]}")" \
  || { show_logs; fail "the merged CSV fails the checks above"; }
[ -z "$KEEP" ] || cp "$KBENCH_MERGED" "$KEEP"
echo "slurm_local: $TASKS array tasks (job $ARRAY_JOB, all COMPLETED) + merge job, $COVERAGE; process-group job" \
     "(2 tasks of one srun step): $PROCESS_ROWS ($((SECONDS - START)) s)"
