"""Scaling efficiency of data-parallel rows (``kbench sweep --devices 1,2,4``).

``scaling_efficiency = samples_per_s(n devices) / (n x samples_per_s(1 device))`` where the
1-device row is the one with the same configuration and device kind (``BASELINE_COLUMNS``) and
a batch equal to the n-device row's *per-device* batch (weak scaling: each device keeps its
batch). 1 for an ``ok`` 1-device row; empty when the row is not ``ok`` or
its 1-device row is missing or not ``ok``.

When: the sweep computes it as it writes a row, from the rows already in the file (it measures
n = 1 first for every model, so a sweep over ``--devices 1,2,4`` fills it); ``kbench merge``
recomputes it over the merged rows, since a shard may hold an n-device row whose 1-device row
is in another shard.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from kbench.results.schema import BASELINE_COLUMNS, key_values


def _number(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def baseline_key(row: Mapping, batch) -> tuple[str, ...]:
    return key_values(row, BASELINE_COLUMNS) + (str(batch),)


def _index(rows: Iterable[Mapping]) -> dict[tuple, float]:
    """1-device ok rows: baseline key -> samples/s."""
    found = {}
    for row in rows:
        sps = _number(row.get("samples_per_s"))
        if row.get("status") == "ok" and str(row.get("n_devices") or "1") == "1" and sps:
            found[baseline_key(row, row["batch_size"])] = sps
    return found


def _efficiency(row: Mapping, baselines: dict[tuple, float]):
    if row.get("status") != "ok":
        return ""
    n = int(row.get("n_devices") or 1)
    if n == 1:
        return 1.0
    sps = _number(row.get("samples_per_s"))
    per_device = int(row["batch_size"]) // n
    base = baselines.get(baseline_key(row, per_device))
    if not (sps and base):
        return ""
    return float(f"{sps / (n * base):.4g}")


def efficiency(row: Mapping, rows: Iterable[Mapping]):
    """The scaling efficiency of ``row`` given the other rows (see the module docstring)."""
    return _efficiency(row, _index(rows))


def fill_efficiency(rows: list[dict]) -> list[dict]:
    """The rows with ``scaling_efficiency`` recomputed from each other."""
    baselines = _index(rows)
    return [{**row, "scaling_efficiency": _efficiency(row, baselines)} for row in rows]
