"""Re-measuring configurations with their rounds interleaved, in one fresh worker: the measuring
half of ``kbench nightly``'s confirmation of a suspected regression (the judging half is
``kbench.nightly.confirm``).

A sweep measures each configuration once, in one block of rounds, so the rounds of a row share
whatever state the machine and the worker process were in meanwhile; that state shifts whole
runs by tens of percent (tests/data/nightly/aa/README.md). Here the suspect and a control are
measured in *visits*: each visit builds the configuration afresh in the same worker and
measures it as the sweep did (``kbench.running.timing.measure`` via the worker protocol: the
row's warm-up, rounds and steps; the visit's value is the median over its rounds), and the
visits alternate in ABBA order (suspect, control, control, suspect, ...), so a drift of the
machine reaches both alike and visit i of the suspect sits next to visit i of the control.
Each visit is a build of its own, so the visits also show how much builds of one code differ.

Configurations come from the rows of a sweep CSV (``config_from_row``): the model resolved
again from its name, input, classes and variant, with the row's warm-up, rounds and steps.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Mapping, Sequence

from kbench.errors import UsageError
from kbench.running.plan import Config
from kbench.running.supervisor import STARTUP_TIMEOUT_S
from kbench.running.worker import READY, RESULT, Worker

DEFAULT_TIMEOUT_S = 600.0


class RemeasureError(Exception):
    """A re-measurement that could not be made (the reason, in one line)."""


@dataclasses.dataclass
class Remeasured:
    throughputs: list[list[float]]  # per configuration, the samples/s of each visit
    other_cpu: list[float]          # other processes' CPU share of every visit (where known)
    device_kind: str                # the worker's device


def config_from_row(row: Mapping[str, str]) -> Config:
    """The sweep ``Config`` that measured a sweep CSV row (its key, warm-up and steps). Raises
    RemeasureError when the model cannot be resolved here (a user's model file that is gone)."""
    from kbench.models import registry

    try:
        variant = json.loads(row["variant"]) if row.get("variant") else {}
        classes = int(row["num_classes"]) if row.get("num_classes") else None
        request = registry.resolve(row["model"], (int(row["input_h"]), int(row["input_w"])), classes, variant)
    except (UsageError, ValueError, TypeError) as exc:
        raise RemeasureError(f"cannot build {row['model']} here: {' '.join(str(exc).split())}") from None
    def number(column: str, default: int) -> int:
        text = str(row.get(column, "") or "")
        return int(text) if text.isdigit() and int(text) > 0 else default

    return Config(request, int(row["batch_size"]), row["mode"], row["backend"], row["precision"],
                  row["jit"] == "true", number("warmup", 10), number("n_iters", 10), number("rounds", 1),
                  number("n_devices", 1))


def abba(visits: int) -> list[int]:
    """The order of ``visits`` visits of two configurations: 0 1 1 0 0 1 1 0 ..."""
    order = []
    for i in range(visits):
        order += [0, 1] if i % 2 == 0 else [1, 0]
    return order


def remeasure(configs: Sequence[Config], visits: int, timeout_s: float = DEFAULT_TIMEOUT_S) -> Remeasured:
    """Measure one or two configurations ``visits`` times each in one fresh worker, visits in
    ABBA order (one configuration: one after another). All configurations must share a backend
    and a device count (one worker measures them). Raises RemeasureError for a configuration
    that fails, a worker that dies or does not answer within ``timeout_s`` per visit."""
    if not 1 <= len(configs) <= 2:
        raise ValueError("remeasure takes a suspect and at most one control")
    if len({(c.backend, c.n_devices) for c in configs}) != 1:
        raise ValueError("the configurations must share a backend and a device count")
    order = abba(visits) if len(configs) == 2 else [0] * visits
    first = configs[0]
    worker = Worker(first.backend, n_devices=first.n_devices)
    throughputs: list[list[float]] = [[] for _ in configs]
    other_cpu: list[float] = []
    try:
        tag, info = worker.wait_ready(max(STARTUP_TIMEOUT_S, timeout_s))
        if tag != READY:
            raise RemeasureError(f"the {first.backend} worker did not start: {worker.stderr_tail() or tag}")
        for index in order:
            cfg = configs[index]
            tag, result = worker.exchange(cfg.worker_payload(), timeout_s)
            if tag is None:
                raise RemeasureError(f"{cfg.describe()}: no result within {timeout_s:g} s")
            if tag != RESULT:
                raise RemeasureError(f"{cfg.describe()}: the worker died: {worker.death().message}")
            if result.get("status") != "ok":
                raise RemeasureError(f"{cfg.describe()}: {result.get('status')}: {result.get('error', '')}")
            throughputs[index].append(float(result["samples_per_s"]))
            if result.get("other_cpu_frac") is not None:
                other_cpu.append(float(result["other_cpu_frac"]))
    except BaseException:
        worker.kill()
        raise
    finally:
        worker.stop()
    return Remeasured(throughputs, other_cpu, str(info.get("device_kind", "")))
