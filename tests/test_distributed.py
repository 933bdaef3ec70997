"""One model over several processes (``kbench sweep --backend jax --devices N --processes P``): P
worker processes join one ``jax.distributed`` job on this host, each driving N/P simulated CPU
devices and feeding its part of the global batch. An ``ok`` row carries ``n_processes``; one
process killed or hanging makes the configuration an ``error``/``timeout`` row and leaves no
process running; the options are checked before any work. Simulated devices share the
machine's cores: nothing here asserts a speed."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from kbench.cli import main
from kbench.running.worker import PROCESS_ID_ENV, PROCESSES_ENV

from sweep_processes import alive, children, cmdline, hanging_workers, profile_cache  # noqa: F401 - a fixture

FAST = ["--input-size", "32", "--modes", "train", "--warmup", "0", "--iters", "2", "--rounds", "1", "--no-progress"]


def read(path):
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False, dtype=str)


def _environ(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            items = f.read().decode(errors="replace").split("\0")
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in items if "=" in item)


def _group_workers(parent: int) -> dict[int, int]:
    """{pid: process id} of the process-group workers of ``parent`` that are alive."""
    found = {}
    for pid in children(parent):
        if "kbench.running.worker" in cmdline(pid) and alive(pid):
            env = _environ(pid)
            if env.get(PROCESSES_ENV, "1") != "1":
                found[pid] = int(env[PROCESS_ID_ENV])
    return found


def test_a_model_over_two_processes_and_one_of_them_killed(tmp_path, profile_cache, monkeypatch):  # noqa: F811
    """Batch 4 over 2 devices in 2 processes: an ok row. Batch 8: both processes stop in the
    configuration (the fault hook), process 1 is killed with SIGKILL: an error row naming it,
    process 0 killed too, and no process of the group left."""
    monkeypatch.setenv("KBENCH_FAULT_INJECT", "lenet5:8:train=hang")
    seen: dict[int, int] = {}
    killed: list[int] = []
    stop = threading.Event()

    def killer():
        while not stop.is_set():
            seen.update(_group_workers(os.getpid()))
            hanging = [pid for pid in hanging_workers(os.getpid()) if seen.get(pid) == 1]
            if hanging and not killed and len(hanging_workers(os.getpid())) == 2:
                killed.append(hanging[0])
                os.kill(hanging[0], signal.SIGKILL)
            time.sleep(0.1)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    out = tmp_path / "group.csv"
    try:
        code = main(["sweep", "lenet5", "--backend", "jax", *FAST, "--batch-sizes", "4,8", "--devices", "2",
                     "--processes", "2", "--timeout", "300", "--profile-cache", profile_cache, "--out", str(out)])
    finally:
        stop.set()
        thread.join()
    assert code == 0
    rows = {r["batch_size"]: r for _, r in read(out).iterrows()}
    assert set(rows) == {"4", "8"}
    ok = rows["4"]
    assert ok["status"] == "ok", ok["error"]
    assert (ok["n_devices"], ok["n_processes"], ok["per_device_batch"]) == ("2", "2", "2")
    assert float(ok["samples_per_s"]) > 0 and ok["rounds"] == "1"
    failed = rows["8"]
    assert killed, "process 1 never reached the injected hang"
    assert failed["status"] == "error" and failed["n_processes"] == "2"
    assert "process 1 of 2 died" in failed["error"] and "SIGKILL" in failed["error"], failed["error"]
    assert sorted(seen.values()) == [0, 1], seen  # one group: the ok row and the killed one shared it
    assert not [pid for pid in seen if alive(pid)], "a process of the group outlived its configuration"
    assert not _group_workers(os.getpid())


@pytest.mark.slow  # a fresh group start and the timeout: about 30 s on 2 cores
def test_a_hanging_group_is_a_timeout_row_and_nothing_is_left(tmp_path, profile_cache, monkeypatch):  # noqa: F811
    monkeypatch.setenv("KBENCH_FAULT_INJECT", "lenet5:4:train=hang")
    out = tmp_path / "hang.csv"
    assert main(["sweep", "lenet5", "--backend", "jax", *FAST, "--batch-sizes", "4", "--devices", "2",
                 "--processes", "2", "--timeout", "5", "--profile-cache", profile_cache, "--out", str(out)]) == 0
    (row,) = [r for _, r in read(out).iterrows()]
    assert row["status"] == "timeout" and "all 2 processes killed" in row["error"], row["error"]
    assert not _group_workers(os.getpid())


@pytest.mark.slow  # the command: resnet18 over 4 simulated devices in 2 processes, a few minutes on 2 cores
def test_resnet18_over_four_devices_in_two_processes(tmp_path):
    out = tmp_path / "resnet18.csv"
    assert main(["sweep", "resnet18", "--backend", "jax", "--input-size", "32", "--batch-sizes", "8",
                 "--modes", "train", "--devices", "4", "--processes", "2", "--no-progress",
                 "--out", str(out)]) == 0
    (row,) = [r for _, r in read(out).iterrows()]
    assert row["status"] == "ok", row["error"]
    assert (row["n_devices"], row["n_processes"], row["per_device_batch"]) == ("4", "2", "2")
    assert float(row["samples_per_s"]) > 0


@pytest.mark.parametrize("args, message", [
    (["--processes", "0"], "--processes 0 must be an integer >= 1"),
    (["--processes", "2", "--backend", "jax"], "--devices 1 is not divisible by --processes 2"),
    (["--processes", "2", "--backend", "jax", "--devices", "2,3"], "--devices 3 is not divisible by --processes 2"),
    (["--processes", "2", "--backend", "jax,tensorflow", "--devices", "2"], "needs --backend jax"),
    (["--processes", "2", "--devices", "2"], "not tensorflow"),
])
def test_bad_process_options_are_refused_before_any_work(tmp_path, capsys, args, message):
    out = tmp_path / "never.csv"
    assert main(["sweep", "lenet5", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


SRUN_GROUP = ["--processes", "2", "--backend", "jax", "--devices", "2", "--launcher", "srun"]


@pytest.mark.parametrize("args, slurm_job, srun_on_path, message", [
    (["--processes", "2", "--backend", "jax", "--devices", "2", "--launcher", "mpirun"], "7", True,
     "--launcher 'mpirun': allowed: local, srun"),
    (["--backend", "jax", "--launcher", "srun"], "7", True, "it needs --processes P >= 2, not 1"),
    (SRUN_GROUP, None, True, "needs a Slurm allocation (SLURM_JOB_ID is not set)"),
    (SRUN_GROUP, "7", False, "no 'srun' on PATH"),
])
def test_the_srun_launcher_is_refused_outside_an_allocation(tmp_path, capsys, monkeypatch, args, slurm_job,
                                                             srun_on_path, message):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if srun_on_path:  # a stand-in that must never run: the refusal comes before any work
        (bin_dir / "srun").write_text("#!/bin/sh\ntouch " + str(tmp_path / "srun-ran") + "\n")
        (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    if slurm_job is None:
        monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    else:
        monkeypatch.setenv("SLURM_JOB_ID", slurm_job)
    out = tmp_path / "never.csv"
    assert main(["sweep", "lenet5", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists() and not (tmp_path / "srun-ran").exists()


def test_the_launcher_config_key_is_checked_like_the_flag(tmp_path, capsys):
    config = tmp_path / "group.toml"
    config.write_text('backend = "jax"\ndevices = [2]\nprocesses = 2\nlauncher = "mpirun"\n')
    out = tmp_path / "never.csv"
    assert main(["sweep", "lenet5", "--config", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'mpirun': allowed: local, srun" in err[0], err
    assert not out.exists()


def test_a_slurm_task_drives_its_slice_of_its_nodes_accelerators():
    from kbench.running.backends import slurm_local_devices

    assert slurm_local_devices(2, {}) is None  # not a task of an srun step
    # every GPU of the node visible to every task: task 1 of 2 on the node, 2 GPUs each -> GPUs 2, 3
    assert slurm_local_devices(2, {"SLURM_LOCALID": "1"}) == [2, 3]
    assert slurm_local_devices(8, {"SLURM_LOCALID": "0", "CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6,7"}) == list(range(8))
    # --gpus-per-task=2: Slurm gave the task its own two, which it sees as 0 and 1
    assert slurm_local_devices(2, {"SLURM_LOCALID": "3", "CUDA_VISIBLE_DEVICES": "6,7"}) == [0, 1]
    assert slurm_local_devices(1, {"SLURM_LOCALID": "5"}) == [5]  # JAX's own default: one device per task


def test_one_row_from_the_processes_results():
    from kbench.running.supervisor import combine_results

    ok = {"status": "ok", "error": "", "samples_per_s": 100.0, "steps": 13, "other_cpu_frac": 0.5, "own_cpu_frac": 0.4}
    # process 0's timing; the other processes' CPU is not load from outside
    assert combine_results([ok, {**ok, "samples_per_s": 90.0, "own_cpu_frac": 0.3}]) == {**ok, "other_cpu_frac": 0.2}
    assert combine_results([ok, {**ok, "own_cpu_frac": None}])["other_cpu_frac"] is None
    assert combine_results([ok, {**ok, "own_cpu_frac": 0.7}])["other_cpu_frac"] == 0.0
    failed = combine_results([ok, {"status": "oom", "error": "out of memory"}])
    assert failed["status"] == "oom" and failed["error"] == "process 1 of 2: out of memory"
    uneven = combine_results([ok, {**ok, "steps": 12}])
    assert uneven["status"] == "error"
    assert uneven["error"] == "the processes ran different numbers of steps (process 0: 13, process 1: 12)"


def test_process_count_is_a_key_column_with_a_default_for_older_files():
    from kbench.results import schema

    assert "n_processes" in schema.KEY_COLUMNS and schema.KEY_DEFAULTS["n_processes"] == "1"
    assert schema.SWEEP_COLUMNS[-2:] == ("n_processes", schema.ROW_CHECK_COLUMN)
    older = {"model": "lenet5", "input_h": "32", "input_w": "32", "batch_size": "4", "mode": "train",
             "backend": "jax", "precision": "float32", "jit": "true", "n_devices": "2"}
    assert schema.row_key(older) == schema.row_key({**older, "n_processes": "1"})
    assert schema.row_key(older) != schema.row_key({**older, "n_processes": "2"})
    assert schema.describe_key({**older, "n_processes": "2"}).endswith("x2 devices in 2 processes")
    assert "n_processes" not in schema.BASELINE_COLUMNS  # efficiency against the 1-device, 1-process row


# A two-task Slurm step on one node, as srun would set its variables for each task: a worker given
# no coordinator calls jax.distributed.initialize() with no arguments, and JAX's Slurm detection
# finds the coordinator (first node of the step, a port derived from the job id), the count and the id.
SLURM_TASK_SCRIPT = """
import os, sys
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
from kbench.running.backends import BACKENDS
BACKENDS["jax"].join_processes(2, int(os.environ["SLURM_PROCID"]), "", 60)
import jax
print(jax.process_index(), jax.process_count(), jax.device_count(), flush=True)
"""


def test_a_worker_without_a_coordinator_joins_by_the_slurm_environment():
    import socket
    import subprocess
    import sys
    from pathlib import Path

    for port in range(61440, 65536):  # JAX's Slurm port: 61440 + job id % 4096; take a free one
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        break
    root = Path(__file__).resolve().parent.parent
    procs = []
    for task in (0, 1):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        env.update({"PYTHONPATH": str(root), "KERAS_BACKEND": "jax", "SLURM_JOB_ID": str(port - 61440),
                    "SLURM_STEP_NODELIST": "localhost", "SLURM_STEP_NUM_NODES": "1", "SLURM_NTASKS": "2",
                    "SLURM_PROCID": str(task), "SLURM_LOCALID": str(task)})
        procs.append(subprocess.Popen([sys.executable, "-c", SLURM_TASK_SCRIPT], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True))
    try:
        outputs = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert [proc.returncode for proc in procs] == [0, 0], [err[-1000:] for _, err in outputs]
    assert [out.split()[-3:] for out, _ in outputs] == [["0", "2", "4"], ["1", "2", "4"]]


class _ScriptedWorker:
    """A stand-in for one process of a group: answers START, then its scripted RESULT (None:
    silent, as a process waiting in a collective for a peer that failed)."""

    def __init__(self, result):
        self.result, self.sent, self.killed_by_us = result, False, False
        self.ready = {"fresh_worker_per_config": False}
        self.alive = True

    def send(self, payload):
        self.sent = True
        self.queue = [("START", {})] + ([("RESULT", self.result)] if self.result is not None else [])
        return True

    def receive(self, timeout_s):
        if self.queue:
            return self.queue.pop(0)
        time.sleep(timeout_s)
        return None, {}

    def kill(self):
        self.killed_by_us, self.alive = True, False

    def stop(self):
        pass


def _group(results, timeout_s=2.0):
    from kbench.running.supervisor import ProcessGroup

    group = ProcessGroup("jax", 2, 2, timeout_s, lambda: float("inf"), lambda *_: None)
    group.workers = [_ScriptedWorker(result) for result in results]
    return group, list(group.workers)


def test_a_process_that_fails_ends_its_group_at_once():
    """Process 1 answers an error while process 0 waits for it (silent): the row is process 1's
    error at once, not a timeout, and both are killed."""
    from kbench.models import registry
    from kbench.running.plan import Config

    cfg = Config(registry.resolve("lenet5", (32, 32)), 4, "train", "jax", "float32", True, 0, 1,
                 n_devices=2, n_processes=2)
    group, workers = _group([None, {"status": "error", "error": "RuntimeError: boom"}], timeout_s=60.0)
    started = time.monotonic()
    result = group.measure(cfg)
    assert time.monotonic() - started < 30
    assert result == {"status": "error", "error": "process 1 of 2: RuntimeError: boom; the group's other processes "
                                                  "were killed"}
    assert all(w.killed_by_us for w in workers) and group.workers == []
    group, workers = _group([None, None], timeout_s=0.5)  # nobody answers: a timeout, everyone killed
    result = group.measure(cfg)
    assert result["status"] == "timeout" and "process 0, 1 of 2 gave no RESULT" in result["error"]
    assert all(w.killed_by_us for w in workers)
    ok = {"status": "ok", "error": "", "samples_per_s": 1.0, "steps": 3}
    group, workers = _group([ok, {**ok, "steps": 2}])  # out of step: an error row, the group killed
    assert group.measure(cfg)["error"] == "the processes ran different numbers of steps (process 0: 3, process 1: 2)"
    assert all(w.killed_by_us for w in workers)
    group, workers = _group([ok, ok])  # in step: process 0's row, the group kept for the next batch
    assert group.measure(cfg)["samples_per_s"] == 1.0 and group.workers == workers
