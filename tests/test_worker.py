"""kbench.running.worker: the line protocol, the fault-injection hook and the entry point. The workers
themselves run in tests/test_sweep.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kbench.running import worker


def test_protocol_round_trip():
    for tag in worker.TAGS:
        line = worker.format_message(tag, {"key": "a|b", "value": 1.5})
        assert line.endswith("\n") and "\n" not in line[:-1]
        assert worker.parse_message(line) == (tag, {"key": "a|b", "value": 1.5})
    assert worker.parse_message("READY\n") == ("READY", {})


@pytest.mark.parametrize("line", ["2026-01-01 I tensorflow: something", "RESULT {not json", "", "ready {}"])
def test_other_lines_are_not_messages(line):
    assert worker.parse_message(line) is None


def test_fault_spec():
    faults = worker.parse_faults("lenet5:2:infer=oom; *:*:train=hang")
    assert worker.fault_for({"model": "lenet5", "batch_size": 2, "mode": "infer"}, faults) == "oom"
    assert worker.fault_for({"model": "lenet5", "batch_size": 1, "mode": "infer"}, faults) is None
    assert worker.fault_for({"model": "vgg11", "batch_size": 64, "mode": "train"}, faults) == "hang"
    with pytest.raises(ValueError):
        worker.parse_faults("lenet5:2=explode")
    assert worker.parse_faults(None) == [] and worker.parse_faults(" ; ") == []


def _cfg(batch_size, mode="infer"):
    return {"request": {"model": "lenet5", "input_shape": [32, 32, 1], "num_classes": 10, "variant": {}},
            "batch_size": batch_size, "mode": mode}


def test_inject_fault_raises_what_the_spec_says():
    from kbench.running.timing import is_oom

    faults = worker.parse_faults("lenet5:2:infer=oom;lenet5:3:infer=error")
    worker.inject_fault(_cfg(1), faults)  # no match: nothing happens
    with pytest.raises(MemoryError) as oom:
        worker.inject_fault(_cfg(2), faults)
    assert is_oom(oom.value)
    with pytest.raises(RuntimeError, match="simulated error"):
        worker.inject_fault(_cfg(3), faults)


def test_unknown_command_exits_2():
    done = subprocess.run([sys.executable, "-m", "kbench.running.worker", "bogus"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "usage: python -m kbench.running.worker" in done.stderr


def test_death_without_oom_evidence_is_not_oom():
    import signal

    outside = worker.Death(-signal.SIGKILL, killed_by_us=False, oom_evidence=False)
    assert outside.killed_from_outside and outside.status == "error" and "oom" not in outside.status
    assert "from outside" in outside.message
    oom = worker.Death(-signal.SIGKILL, killed_by_us=False, oom_evidence=True)
    assert oom.status == "oom" and not oom.killed_from_outside
    ours = worker.Death(-signal.SIGKILL, killed_by_us=True, oom_evidence=False)
    assert not ours.killed_from_outside and ours.status == "error"
    crash = worker.Death(134, killed_by_us=False, oom_evidence=False, tail="boom")
    assert crash.message == "worker exited with code 134: boom"
    count = worker.oom_kill_count()
    assert count is None or count >= 0


def test_kill_fault_kind_is_known():
    assert worker.parse_faults("lenet5:1:infer=kill") == [("lenet5", "1", "infer", "kill")]
