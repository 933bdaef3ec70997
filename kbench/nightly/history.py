"""``kbench history``: the nightly sweep CSVs of a results directory as time series, with steps.

Every nightly sweep CSV (``sweep-YYYY-MM-DDTHHMMSSZ.csv`` or ``sweep-YYYY-MM-DD.csv``:
``kbench.results.frame.night_label``) is one night, i.e. one run. A series is one configuration
(``kbench.results.schema.CONFIG_KEY``) on one host; its points are the nights whose row has status
ok, valued by the row's ``samples_per_s`` (the median over rounds). The rounds measure the noise
within one night, which is smaller than the noise between nights, so steps are judged on the
nights' medians against the night-to-night noise, never on pooled rounds. Change points are
searched over the whole series (``kbench.results.stats.detect_steps``), not only between the last two
nights; each step is reported with the night and commit it started at, the commit before it
(the range to bisect), its size and its significance, and with the environment columns that
changed that night, when some did (a library upgrade is a step too, but not a kbench change).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping

import numpy as np

from kbench.results import stats
from kbench.errors import UsageError
from kbench.results import schema
from kbench.results.frame import nightly_files, read_sweep
from kbench.results.schema import CONFIG_KEY, ENVIRONMENT_COLUMNS

SERIES_KEY = CONFIG_KEY + ("host",)
_CONFIG_COLUMNS = schema.DISPLAY_KEY + ("host",)
STEP_COLUMNS = _CONFIG_COLUMNS + ("night", "commit", "previous_night", "previous_commit", "direction", "before",
                                  "after", "change", "noise", "noise_multiple", "p_value", "points_before",
                                  "points_after", "note")
SERIES_COLUMNS = _CONFIG_COLUMNS + ("nights", "first_night", "last_night", "latest_samples_per_s", "noise", "steps")


@dataclasses.dataclass
class Point:
    night: str
    commit: str
    samples_per_s: float
    rounds: list[float]
    environment: tuple[str, ...]  # ENVIRONMENT_COLUMNS' values


@dataclasses.dataclass
class Series:
    key: tuple
    points: list[Point]
    steps: list[stats.Step] = dataclasses.field(default_factory=list)

    @property
    def fields(self) -> dict[str, str]:
        return dict(zip(SERIES_KEY, self.key))

    def config_columns(self) -> dict[str, str]:
        fields = self.fields
        return {**schema.display_fields(fields), "host": fields["host"]}

    @property
    def values(self) -> list[float]:
        return [p.samples_per_s for p in self.points]


@dataclasses.dataclass
class History:
    directory: str
    nights: list[str]
    series: list[Series]

    def steps(self) -> list[dict]:
        """One row per detected step, series in file order, steps in time order."""
        rows = []
        for series in self.series:
            for step in series.steps:
                rows.append(_step_row(series, step))
        return rows

    def series_rows(self) -> list[dict]:
        rows = []
        for series in self.series:
            logs = np.log(np.asarray(series.values, dtype=float))
            rows.append({**series.config_columns(), "nights": len(series.points),
                         "first_night": series.points[0].night, "last_night": series.points[-1].night,
                         "latest_samples_per_s": series.points[-1].samples_per_s,
                         "noise": stats.robust_noise(logs), "steps": len(series.steps)})
        return rows

    def night_noise(self, hosts: set[str], before: str,
                    min_nights: int = stats.MIN_NIGHTS_FOR_NOISE) -> dict[tuple, float]:
        """``CONFIG_KEY`` -> the robust night-to-night noise (``stats.robust_noise`` of the log
        samples/s) of the nights before ``before``, for each series of one of ``hosts`` with at
        least ``min_nights`` of them (``stats.min_effect_from_noise`` turns it into a minimum
        effect for tonight's comparison)."""
        noise = {}
        for series in self.series:
            if series.key[-1] not in hosts and hosts:
                continue
            values = [p.samples_per_s for p in series.points if p.night < before]
            if len(values) >= min_nights:
                noise[series.key[:-1]] = stats.robust_noise(np.log(np.asarray(values, dtype=float)))
        return noise

    def summary(self) -> str:
        steps = self.steps()
        slower = sum(1 for s in steps if s["direction"] == stats.SLOWER)
        nights = f"{self.nights[0]} .. {self.nights[-1]}" if self.nights else "none"
        return (f"{len(self.nights)} nights ({nights}), {len(self.series)} configurations: "
                f"{len(steps)} steps ({slower} slower, {len(steps) - slower} faster)")


def _step_row(series: Series, step: stats.Step) -> dict:
    first, previous = series.points[step.index], series.points[step.index - 1]
    changed = [f"{c} {old} -> {new}" for c, old, new in zip(ENVIRONMENT_COLUMNS, previous.environment,
                                                           first.environment) if old != new]
    note = "environment changed: " + "; ".join(changed) if changed else ""
    return {**series.config_columns(), "night": first.night, "commit": first.commit,
            "previous_night": previous.night, "previous_commit": previous.commit,
            "direction": stats.SLOWER if step.change < 0 else stats.FASTER, "before": step.before,
            "after": step.after, "change": step.change, "noise": step.noise,
            "noise_multiple": step.noise_multiple, "p_value": step.p_value, "points_before": step.points_before,
            "points_after": step.points_after, "note": note}


def load_history(directory: str | Path, tag: str = "sweep", host: str | None = None,
                 min_points: int = stats.DEFAULT_MIN_POINTS, min_change: float = stats.DEFAULT_MIN_CHANGE,
                 noise_factor: float = stats.DEFAULT_NOISE_FACTOR, frames: Mapping[Path, object] | None = None) -> History:
    """Read every nightly ``<tag>-YYYY-MM-DD[THHMMSSZ].csv`` of ``directory`` and detect steps in
    every series. ``frames``: files the caller has read already (``read_sweep``), by path."""
    files = nightly_files(directory, tag)
    if not files:
        raise UsageError(f"no {tag}-YYYY-MM-DD.csv or {tag}-YYYY-MM-DDTHHMMSSZ.csv files in {str(directory)!r} (run_all.sh writes them there)")
    known = {Path(path).resolve(): frame for path, frame in (frames or {}).items()}
    by_key: dict[tuple, list[Point]] = {}
    for night, path in files:
        frame = known.get(path.resolve())
        frame = read_sweep(path) if frame is None else frame
        ok = frame[frame["status"] == "ok"]
        if host is not None:
            ok = ok[ok["host"] == host]
        columns = [ok[c].to_numpy() for c in ("key", "host", "git_commit", "throughput", "round_values")]
        environments = zip(*(ok[c].to_numpy() for c in ENVIRONMENT_COLUMNS))
        for (key, row_host, commit, throughput, rounds), environment in zip(zip(*columns), environments):
            by_key.setdefault(key + (row_host,), []).append(
                Point(night, commit, float(throughput), rounds, environment))
    if host is not None and not by_key:
        raise UsageError(f"no ok rows of host {host!r} in {str(directory)!r}")
    series = []
    for key, points in by_key.items():
        found = (stats.detect_steps([p.samples_per_s for p in points], min_points, min_change, noise_factor)
                 if len(points) >= 2 * min_points else [])
        series.append(Series(key, points, found))
    return History(str(directory), [night for night, _ in files], series)
