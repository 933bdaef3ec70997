"""What ``run_all.sh`` does after its sweep (``kbench nightly``): compare, confirm, history, report,
summary.

One run's sweep CSV (``new``) in a results directory of nightly CSVs:

1. ``history`` over every nightly CSV of the directory (steps over the whole series); a
   configuration with ``stats.MIN_NIGHTS_FOR_NOISE`` earlier nights gets its own minimum
   effect from their night-to-night noise (``stats.min_effect_from_noise``) when that is larger
   than the threshold;
2. ``compare`` it with the previous run of the same machine (``frame.previous_frame``: the
   newest earlier file of the directory holding rows of one of its hosts), if there is one;
3. every ``slower`` pair measured again, interleaved with a control, and kept ``slower`` only
   when that confirms it (``kbench.nightly.confirm``);
4. the HTML ``report`` (``report_dir``, default ``<directory>/report``), verdict first;
5. one paragraph saying all of it.

Exit code (``Night.exit_code``): 1 when a configuration is ``slower`` after confirmation (a
regression: what a nightly scheduler reads), else 3 when the report failed by an internal error,
else 0. ``inconclusive`` and ``not_comparable`` pairs and history steps never fail a night (a step
stays in the history for good and would fail every later night). A history or report that
cannot be built (a damaged older CSV) is said in the paragraph and does not hide tonight's
verdict; a ``new`` that is not a sweep CSV, a tag that is not a plain name, or a report directory
that is not the report's own, is bad input (exit 2, nothing written).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from kbench.errors import UsageError
from kbench.nightly import confirm
from kbench.nightly.compare import Comparison, label
from kbench.nightly.history import History, load_history
from kbench.nightly.report import build_report, check_out, comparable
from kbench.results import stats
from kbench.results.frame import check_tag, describe_key, night_label, previous_frame, printable, read_sweep

EXIT_REGRESSION, EXIT_INTERNAL = 1, 3


@dataclasses.dataclass
class Night:
    new: Path
    base: Path | None
    comparison: Comparison | None
    history: History | None
    report_index: Path | None
    summary: str
    confirmations: list[confirm.Outcome] = dataclasses.field(default_factory=list)
    internal_error: str = ""

    @property
    def regressions(self) -> list[dict]:
        return self.comparison.regressions if self.comparison else []

    @property
    def exit_code(self) -> int:
        if self.regressions:
            return EXIT_REGRESSION
        return EXIT_INTERNAL if self.internal_error else 0


def _spread_text(frame) -> str:
    """'median spread 1.2% (worst 4.5%: resnet50 224x224 b1 train ...)' over the ok rows with rounds."""
    spreads = [(stats.relative_iqr(rounds), key) for rounds, key, status in
               zip(frame["round_values"], frame["key"], frame["status"]) if status == "ok" and len(rounds) >= 2]
    if not spreads:
        return "no rounds recorded"
    worst = max(spreads, key=lambda item: item[0])
    median = float(np.median([value for value, _ in spreads]))
    return (f"spread of the rounds (IQR/median) {median:.1%} median, {worst[0]:.1%} worst "
            f"({describe_key(worst[1])})")


def _load_text(frame) -> str:
    values = frame["other_cpu"].dropna()
    if not len(values):
        return ""
    return (f"; other processes used {values.min():.0%}-{values.max():.0%} of the CPUs while rows were "
            f"measured")


def _regression_text(row: dict) -> str:
    p = f" (p={row['p_value']:.2g})" if row["p_value"] is not None else ""
    return f"{label(row)} {row['change']:+.1%}{p}"


def run_night(new: str | Path, directory: str | Path | None = None, report_dir: str | Path | None = None,
              tag: str = "sweep", threshold: float = stats.DEFAULT_THRESHOLD, alpha: float = stats.DEFAULT_ALPHA,
              remeasure: confirm.Remeasure | None = None,
              confirm_budget_s: float = confirm.DEFAULT_BUDGET_S) -> Night:
    """Everything ``kbench nightly`` does (see the module docstring). ``remeasure``: how a
    suspect is measured again (default: on this machine, ``confirm.measure_here``)."""
    check_tag(tag)
    new = Path(new)
    directory = Path(directory) if directory is not None else new.parent
    report_dir = Path(report_dir) if report_dir is not None else directory / "report"
    frame = read_sweep(new)  # bad input first, before anything is written
    if not directory.is_dir():
        raise UsageError(f"{str(directory)!r} is not a directory (expected run_all.sh's results directory)")
    check_out(report_dir)
    label_text = night_label(new.name, tag) or new.name
    base, base_frame, skipped = previous_frame(directory, new, tag, new_frame=frame)

    history = history_error = None
    try:
        history = load_history(directory, tag, frames={new: frame, **({base: base_frame} if base else {})})
    except UsageError as exc:
        history_error = str(exc)
    min_effects = {}
    if history is not None and night_label(new.name, tag):
        noise = history.night_noise(set(frame["host"]) - {""}, label_text)
        min_effects = {key: stats.min_effect_from_noise(value, threshold) for key, value in noise.items()}

    # A sweep whose budget ran out before its first row has nothing to compare.
    comparison = (comparable(base_frame, frame, base, new, threshold, alpha, min_effects)
                  if base is not None and len(frame) else None)
    outcomes = []
    if comparison is not None and comparison.regressions:
        outcomes = confirm.confirm_regressions(comparison, base_frame, frame, remeasure or confirm.measure_here,
                                               confirm_budget_s)

    counts: dict[str, int] = {}
    for status in frame["status"]:
        counts[status] = counts.get(status, 0) + 1
    hosts = sorted(set(frame["host"]) - {""})
    commits = sorted(set(frame["git_commit"]) - {""})
    parts = [f"Night {label_text} on {', '.join(hosts) or 'an unknown host'} (commit {', '.join(commits) or '?'}): "
             f"{len(frame)} configurations ({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}); "
             f"{_spread_text(frame)}{_load_text(frame)}."]
    if not len(frame):
        parts.append("Nothing measured: no row to compare.")
    elif comparison is None and base is not None:
        parts.append(f"Nothing to compare: no configuration in common with {base.name} (the sweep changed).")
    elif comparison is None:
        parts.append("No earlier run of this machine to compare with.")
    else:
        parts.append(f"Against {base.name}: {comparison.summary()}.")
        if outcomes:
            confirmed = sum(1 for o in outcomes if o.confirmation and o.confirmation.confirmed)
            unmeasured = sum(1 for o in outcomes if o.confirmation is None)
            parts.append(f"Re-measured {len(outcomes)} suspected regression{'s' if len(outcomes) > 1 else ''} "
                         f"interleaved with a control: {confirmed} confirmed, "
                         f"{len(outcomes) - confirmed - unmeasured} not confirmed (same), "
                         f"{unmeasured} not re-measured (inconclusive).")
        if min_effects:
            raised = sum(1 for value in min_effects.values() if value > threshold)
            parts.append(f"{len(min_effects)} configurations have {stats.MIN_NIGHTS_FOR_NOISE}+ earlier nights; "
                         f"{raised} of them need more than {threshold:.0%} by their night-to-night noise.")
    if skipped:
        parts.append(f"Passed over (unreadable): {'; '.join(skipped)}.")

    index = None
    internal_error = ""
    if history is None:
        parts.append(f"History and report not written: {history_error}.")
    else:
        steps = history.steps()
        parts.append(f"History: {history.summary()}"
                     + ("." if not steps else ", latest: " + "; ".join(
                         f"{s['model']} b{s['batch_size']} {s['mode']} {s['direction']} {s['change']:+.1%} "
                         f"from {s['night']}" for s in steps[-3:]) + "."))
        try:
            index = build_report(directory, report_dir, tag, threshold=threshold, alpha=alpha,
                                 comparison=comparison, history=history, latest=(new, frame)).index
            parts.append(f"Report: {index}.")
        except UsageError as exc:
            parts.append(f"Report not written: {exc}.")
        except Exception as exc:  # noqa: BLE001 - an internal error of the report never hides the verdict
            internal_error = f"{type(exc).__name__}: {exc}"
            parts.append(f"Report not written: internal error ({internal_error}); the previous report is kept.")

    if comparison is not None and comparison.regressions:
        parts.append("REGRESSION: " + "; ".join(_regression_text(row) for row in comparison.regressions)
                     + " (exit 1).")
    else:
        parts.append("No regression" + (" (exit 3: the report failed)." if internal_error else " (exit 0)."))
    return Night(new, base, comparison, history, index, printable(" ".join(parts)), outcomes, internal_error)
