"""Synthetic nightly directories for the history and report tests, built from a real row."""

import csv
from pathlib import Path

from kbench.results import stats

DATA = Path(__file__).parent / "data" / "nightly"


def _template():
    with open(DATA / "rounds_a.csv", newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def write_nights(directory, values_per_row, commits=None, edit=None, tag="sweep"):
    """One CSV per night; row i of the template gets values_per_row[i][night] samples/s."""
    header, rows = _template()
    nights = len(next(iter(values_per_row.values())))
    directory.mkdir(parents=True, exist_ok=True)
    for night in range(nights):
        date = f"2026-10-{night + 1:02d}"
        out_rows = []
        for index, values in values_per_row.items():
            row = dict(rows[index])
            value = values[night]
            row.update(samples_per_s=f"{value:.6g}", samples_per_s_rounds=stats.format_rounds([value] * 5),
                       samples_per_s_iqr="0", git_commit=(commits or {}).get(night, f"commit{night:02d}"),
                       timestamp=f"{date}T02:00:00+00:00")
            if edit:
                edit(night, row)
            out_rows.append(row)
        with open(directory / f"{tag}-{date}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, header, lineterminator="\n")
            writer.writeheader()
            writer.writerows(out_rows)
    return directory


def recorded_remeasure(paths, calls=None):
    """A stand-in for the re-measurement of ``kbench nightly`` made of real, recorded runs: visit
    i of a configuration is its row in ``paths[i]`` (a sweep of the same code, measured on the
    machine of the night). ``calls`` collects (suspect key, control key, visits)."""
    from kbench.results.frame import read_sweep

    frames = [dict(zip(frame["key"], frame["throughput"])) for frame in map(read_sweep, paths)]

    def remeasure(suspect, control, visits):
        if calls is not None:
            calls.append((suspect["key"], control["key"] if control else None, visits))
        used = frames[:visits]
        values = [frame[suspect["key"]] for frame in used]
        controls = [frame[control["key"]] for frame in used] if control else None
        return values, controls

    return remeasure
