"""What ``run_all.sh`` does after its sweep (``kbench nightly``): compare, history, report, summary.

One run's sweep CSV (``new``) in a results directory of nightly CSVs:

1. ``compare`` it with the previous run of the same machine (``sweep_frame.previous_run``: the
   newest earlier file of the directory holding rows of one of its hosts), if there is one;
2. ``history`` over every nightly CSV of the directory (steps over the whole series);
3. the HTML ``report`` (``report_dir``, default ``<directory>/report``);
4. one paragraph saying all of it.

The exit code is the comparison's: 1 when a configuration is ``slower`` (a regression; what a
nightly scheduler reads), else 0. History steps do not fail a night (a step stays in the history
for good and would fail every later night). A history or report that cannot be built (a damaged
older CSV) is said in the paragraph and does not hide tonight's verdict; a ``new`` that is not a
sweep CSV, or a report directory that is not the report's own, is bad input (exit 2, nothing
written).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from kbench.results import stats
from kbench.nightly.compare import Comparison, compare_files
from kbench.errors import UsageError
from kbench.nightly.history import History, load_history
from kbench.nightly.report import build_report, check_out
from kbench.results.frame import describe_key, night_label, previous_run, read_sweep


@dataclasses.dataclass
class Night:
    new: Path
    base: Path | None
    comparison: Comparison | None
    history: History | None
    report_index: Path | None
    summary: str

    @property
    def regressions(self) -> list[dict]:
        return self.comparison.regressions if self.comparison else []

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0


def _spread_text(frame) -> str:
    """'median spread 1.2% (worst 4.5%: resnet50 224x224 b1 train ...)' over the ok rows with rounds."""
    spreads = [(stats.relative_iqr(row["round_values"]), row["key"]) for _, row in frame.iterrows()
               if row["status"] == "ok" and len(row["round_values"]) >= 2]
    if not spreads:
        return "no rounds recorded"
    worst = max(spreads, key=lambda item: item[0])
    median = float(np.median([value for value, _ in spreads]))
    return (f"spread of the rounds (IQR/median) {median:.1%} median, {worst[0]:.1%} worst "
            f"({describe_key(worst[1])})")


def _load_text(frame) -> str:
    values = [v for v in frame["other_cpu"] if v == v]
    if not values:
        return ""
    return f"; other processes used {min(values):.0%}-{max(values):.0%} of the CPUs while rows were measured"


def run_night(new: str | Path, directory: str | Path | None = None, report_dir: str | Path | None = None,
              tag: str = "sweep", threshold: float = stats.DEFAULT_THRESHOLD,
              alpha: float = stats.DEFAULT_ALPHA) -> Night:
    new = Path(new)
    directory = Path(directory) if directory is not None else new.parent
    report_dir = Path(report_dir) if report_dir is not None else directory / "report"
    frame = read_sweep(new)  # bad input first, before anything is written
    if not directory.is_dir():
        raise UsageError(f"{str(directory)!r} is not a directory (expected run_all.sh's results directory)")
    check_out(report_dir)
    label = night_label(new.name, tag) or new.name
    base, skipped = previous_run(directory, new, tag)
    # A sweep whose budget ran out before its first row has nothing to compare.
    comparison = compare_files(base, new, threshold, alpha) if base and len(frame) else None

    counts: dict[str, int] = {}
    for status in frame["status"]:
        counts[status] = counts.get(status, 0) + 1
    hosts = sorted(set(frame["host"]) - {""})
    commits = sorted(set(frame["git_commit"]) - {""})
    parts = [f"Night {label} on {', '.join(hosts) or 'an unknown host'} (commit {', '.join(commits) or '?'}): "
             f"{len(frame)} configurations ({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}); "
             f"{_spread_text(frame)}{_load_text(frame)}."]
    if not len(frame):
        parts.append("Nothing measured: no row to compare.")
    elif comparison is None:
        parts.append("No earlier run of this machine to compare with.")
    else:
        parts.append(f"Against {base.name}: {comparison.summary()}.")
    if skipped:
        parts.append(f"Passed over (unreadable): {'; '.join(skipped)}.")

    history = index = None
    try:
        history = load_history(directory, tag)
        steps = history.steps()
        parts.append(f"History: {history.summary()}"
                     + ("." if not steps else ", latest: " + "; ".join(
                         f"{s['model']} b{s['batch_size']} {s['mode']} {s['direction']} {s['change']:+.1%} "
                         f"from {s['night']}" for s in steps[-3:]) + "."))
        index = build_report(directory, report_dir, tag, threshold=threshold, alpha=alpha,
                             comparison=comparison, history=history).index
        parts.append(f"Report: {index}.")
    except UsageError as exc:
        parts.append(f"{'Report' if history else 'History and report'} not written: {exc}.")

    if comparison is not None and comparison.regressions:
        worst = sorted(comparison.regressions, key=lambda row: row["change"])
        parts.append("REGRESSION: " + "; ".join(
            f"{row['model']} {row['input']} b{row['batch_size']} {row['mode']} {row['backend']} {row['precision']} "
            f"{row['change']:+.1%}" + (f" (p={row['p_value']:.2g})" if row["p_value"] is not None else "")
            for row in worst) + " (exit 1).")
    else:
        parts.append("No regression (exit 0).")
    return Night(new, base, comparison, history, index, " ".join(parts))
