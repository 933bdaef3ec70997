"""Confirming a suspected regression before ``kbench nightly`` reports it.

``kbench compare`` judges a pair by the rounds of the two rows, and the rounds of one run do not
see the noise *between* runs: two back-to-back sweeps of one commit differ by tens of percent in
some configurations with every round separated (p = 2/252): without the load record, the rank
test alone called 22-28% of the recorded A/A pairs ``slower`` (tests/data/nightly/aa/README.md).
So every ``slower`` pair of a night is measured again (``kbench.running.confirm.remeasure``): in
a fresh worker, visit by visit, interleaved (ABBA) with a *control*, a configuration of the
same night that did not move, so that a shift of the whole machine shows in both. The verdict
stays ``slower`` only when the suspect's ratio to the control fell by the minimum effect
against the base run's ratio, significantly (``kbench.results.stats.confirm_slowdown``); it
becomes ``same`` ("not confirmed") otherwise, and ``inconclusive`` when no re-measurement could
be made (the model cannot be built here, another host or device measured the rows, a visit
failed, other processes took ``compare.HEAVY_LOAD`` of the CPUs meanwhile, or the
confirmation's time budget ran out).

The control: a ``same`` pair of the comparison, both rows ok with rounds, on the same backend,
device kind, device count, precision and jit; preferring one whose median did not move by its
minimum effect, then the suspect's model, then its mode, then the smallest move. With none
(every configuration moved), the suspect is re-measured alone.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from typing import Callable, Mapping, Sequence

from kbench.nightly.compare import HEAVY_LOAD
from kbench.results import stats
from kbench.results.frame import printable

# (suspect row, control row or None, visits) -> (suspect samples/s per visit, control's or None)
Remeasure = Callable[[Mapping[str, str], "Mapping[str, str] | None", int], "tuple[list[float], list[float] | None]"]
DEFAULT_BUDGET_S = 600.0


class NotRemeasured(Exception):
    """Why a suspect could not be measured again (one line)."""


@dataclasses.dataclass
class Outcome:
    key: tuple
    control: tuple | None
    confirmation: stats.Confirmation | None
    reason: str = ""  # why there is no confirmation


def _match(row: Mapping, other: Mapping) -> bool:
    return all(row[c] == other[c] for c in ("backend", "device_kind", "n_devices", "precision", "jit"))


def choose_control(suspect: Mapping, rows: Sequence[Mapping]) -> Mapping | None:
    """The comparison row to interleave with ``suspect`` (see the module docstring), or None."""
    candidates = [row for row in rows if row is not suspect and row["verdict"] == stats.SAME
                  and row["base_rounds"] and row["new_rounds"] and row["change"] is not None and _match(row, suspect)]
    if not candidates:
        return None
    return min(candidates, key=lambda row: (abs(row["change"]) >= row["min_effect"], row["model"] != suspect["model"],
                                            row["mode"] != suspect["mode"], abs(row["change"]), row["batch_size"]))


def measure_here(suspect: Mapping[str, str], control: Mapping[str, str] | None,
                 visits: int) -> tuple[list[float], list[float] | None]:
    """The real re-measurement (``kbench.running.confirm``), on this machine: refused for rows
    of another host or device kind."""
    from kbench.running import confirm

    here = socket.gethostname()
    if suspect["host"] and suspect["host"] != here:
        raise NotRemeasured(f"measured on host {suspect['host']}, this is {here}")
    try:
        configs = [confirm.config_from_row(suspect)] + ([confirm.config_from_row(control)] if control else [])
        result = confirm.remeasure(configs, visits)
    except confirm.RemeasureError as exc:
        raise NotRemeasured(str(exc)) from None
    if suspect["device_kind"] and result.device_kind != suspect["device_kind"]:
        raise NotRemeasured(f"measured on {suspect['device_kind']}, this worker has {result.device_kind}")
    if result.other_cpu and max(result.other_cpu) >= HEAVY_LOAD:
        raise NotRemeasured(f"re-measured under heavy load: other processes used up to {max(result.other_cpu):.0%} "
                            f"of the CPUs")
    return result.throughputs[0], (result.throughputs[1] if control else None)


def confirm_regressions(comparison, base_frame, new_frame, remeasure: Remeasure = measure_here,
                        budget_s: float = DEFAULT_BUDGET_S, clock: Callable[[], float] = time.monotonic) -> list[Outcome]:
    """Re-measure every ``slower`` row of ``comparison`` (worst first) and settle its verdict in
    place: ``slower`` (confirmed), ``same`` (not confirmed) or ``inconclusive`` (not
    re-measured). Returns what was done, one ``Outcome`` per suspect."""
    alpha = comparison.alpha
    visits = stats.min_rounds(alpha)
    base_rows = _rows_by_key(base_frame)
    new_rows = _rows_by_key(new_frame)
    started = clock()
    outcomes = []
    for suspect in comparison.regressions:
        key = suspect["key"]
        control = choose_control(suspect, comparison.rows)
        control_key = control["key"] if control else None
        try:
            if clock() - started > budget_s:
                raise NotRemeasured(f"the confirmation's time budget of {budget_s:g} s ran out")
            now_s, now_c = remeasure(new_rows[key], new_rows[control_key] if control else None, visits)
        except NotRemeasured as exc:
            reason = printable(exc)
            suspect.update(verdict=stats.INCONCLUSIVE, confirmation=f"not re-measured: {reason}",
                           note=f"slower by {suspect['change']:+.1%} in the sweep; {suspect['note']}".rstrip("; "))
            outcomes.append(Outcome(key, control_key, None, reason))
            continue
        result = stats.confirm_slowdown(base_rows[key]["round_values"],
                                        base_rows[control_key]["round_values"] if control else None,
                                        now_s, now_c, suspect["min_effect"], alpha)
        against = f" against {_short(control)}" if control else " (no control: every configuration moved)"
        if result.confirmed:
            suspect["confirmation"] = f"confirmed: {result.note}{against}"
        else:
            suspect.update(verdict=stats.SAME, confirmation=f"not confirmed: {result.note}{against}",
                           note=f"slower by {suspect['change']:+.1%} in the sweep, not confirmed by a re-measurement")
        outcomes.append(Outcome(key, control_key, result))
    return outcomes


def _short(row: Mapping) -> str:
    return printable(f"{row['model']} b{row['batch_size']} {row['mode']}")


def _rows_by_key(frame) -> dict[tuple, dict]:
    return _LazyRows(frame)


class _LazyRows(dict):
    """key -> row (a dict) of a frame, made only for the few keys asked: ``to_dict`` of a
    150k-row night would cost seconds and hundreds of MB."""

    def __init__(self, frame):
        super().__init__()
        self.frame = frame
        self.index = {key: i for i, key in enumerate(frame["key"])}

    def __missing__(self, key):
        row = self.frame.iloc[self.index[key]].to_dict()
        self[key] = row
        return row
