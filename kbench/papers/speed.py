"""``kbench reproduce --speed``: speed ratios within a table, measured here beside the published ones.

Absolute speeds on the authors' GPUs and phones cannot be reproduced, but the ratio of a row's speed
to the table's baseline row can be compared. Every model of a table's speed rows runs in one sweep
on this machine (``kbench.running.timing.measure``, the sweep's engine: TensorFlow, float32, no jit unless
the backend's default says otherwise, in-process); each speed row then gets:

* ``speed_model``, ``speed_batch_size``, ``speed_images_per_s``: what was timed here;
* ``measured_speed_ratio``: this row's speed over the baseline row's, measured here;
* ``reported_speed_ratio``: the same ratio from the printed numbers (latencies inverted, so that
  both ratios are "times faster than the baseline");
* ``speed_ordering``: ``same`` when both ratios are on the same side of 1 (or both within 2% of
  it), ``reversed`` otherwise; ``baseline`` for the baseline row itself.

The baseline is the table's ``baseline`` row where it prints that speed (same quantity and ``at``),
else the first row of the same ``group`` that has a model, else the first such row of the table.
Rows without a kbench model get no ratio. The verdict of a speed row stays ``speed``: a speed on this
machine is no reproduction of the paper's, and the summary counts speeds apart from compared numbers.
"""

from __future__ import annotations

from typing import Any

TIE = 0.02  # ratios within 2% of 1 count as "as fast as the baseline"
TRAIN_QUANTITIES = {"train_fps"}
LATENCY_QUANTITIES = {"cpu_ms"}


def _mode(quantity: str) -> str:
    return "train" if quantity in TRAIN_QUANTITIES else "infer"


def _reported_speed(quantity: str, reported) -> float | None:
    if reported in (None, "", 0):
        return None
    return 1.0 / float(reported) if quantity in LATENCY_QUANTITIES else float(reported)


def ordering(measured_ratio: float, reported_ratio: float) -> str:
    def side(ratio):
        return 0 if abs(ratio - 1) <= TIE else (1 if ratio > 1 else -1)

    return "same" if side(measured_ratio) == side(reported_ratio) else "reversed"


def _speed_entries(table, report_rows):
    """``(row, value, report entry)`` of every speed value of ``table``, in reading order."""
    pairs = table.printed_values()
    return [(row, value, entry) for (row, value), entry in zip(pairs, report_rows) if value.kind == "speed"]


def _baseline(table, entries, row, value):
    candidates = [(r, v, e) for r, v, e in entries if r.model and v.quantity == value.quantity and v.at == value.at]
    for pick in ([c for c in candidates if c[0].label == table.baseline],
                 [c for c in candidates if row.group and c[0].group == row.group], candidates):
        if pick:
            return pick[0]
    return None


def add_speed_ratios(tables, report: list[dict[str, Any]], *, iters: int = 10, warmup: int = 2,
                     batch_size: int = 1) -> None:
    """Time every model of the tables' speed rows once per mode and add the speed columns to
    ``report`` (the rows of ``kbench.papers.reproduce.reproduce(tables)``, in the same order)."""
    from kbench.running import backends
    from kbench.models import registry
    from kbench.running.timing import measure

    offset = 0
    timed: dict[tuple, dict] = {}
    device = backends.active().detect()
    for table in tables:
        n = len(table.printed_values())
        rows = report[offset:offset + n]
        offset += n
        entries = _speed_entries(table, rows)
        for row, value, entry in entries:
            if not row.model:
                continue
            request = registry.resolve(row.model, row.input_size, row.num_classes, dict(row.set))
            key = (request.name, request.input_shape, request.num_classes, request.variant_text, _mode(value.quantity))
            if key not in timed:
                cfg = {"request": request.to_payload(), "batch_size": batch_size, "mode": key[-1],
                       "precision": "float32", "jit": False, "warmup": warmup, "iters": iters}
                timed[key] = measure(cfg, device)
            result = timed[key]
            entry.update(speed_model=request.name, speed_batch_size=batch_size,
                         speed_images_per_s=result.get("samples_per_s") if result["status"] == "ok" else None)
        for row, value, entry in entries:
            if entry.get("speed_images_per_s") is None:
                continue
            base = _baseline(table, entries, row, value)
            if base is None or base[2].get("speed_images_per_s") is None:
                continue
            base_row, base_value, base_entry = base
            measured_ratio = entry["speed_images_per_s"] / base_entry["speed_images_per_s"]
            mine, theirs = _reported_speed(value.quantity, entry["reported"]), _reported_speed(value.quantity, base_entry["reported"])
            entry["measured_speed_ratio"] = round(measured_ratio, 4)
            if mine is None or theirs is None:
                continue
            reported_ratio = mine / theirs
            entry["reported_speed_ratio"] = round(reported_ratio, 4)
            entry["speed_ordering"] = "baseline" if base_entry is entry else ordering(measured_ratio, reported_ratio)
