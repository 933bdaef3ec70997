"""The false-alarm rate of kbench's nightly verdicts on the recorded A/A runs of this directory.

Each ``set*/`` directory holds ten recorded pairs (README.md); within a set every CSV measured
the same commit on the same machine, so every ``slower`` is a false alarm. Two figures, both deterministic (the recorded data and a fixed seed):

* ``pairs``: the ten recorded pairs as ``kbench nightly`` sees them (``pairNN_a`` the previous
  night, ``pairNN_b`` tonight), every ``slower`` confirmed against five *other* recorded runs as
  the re-measurement's visits (each a separate build of the same code on the same machine, like
  the visits of ``kbench.running.confirm``; suspect and control from the same run).
* ``simulate``: many more nights: a random ordered pair of distinct runs as (previous, tonight),
  each row's rounds resampled with replacement (the run's own level kept: the shift between
  runs is the real one), the visits from five other random runs, resampled likewise.

Counted per configuration-night: ``slower`` from the rank test alone (what ``kbench compare``
says), ``faster``, and ``slower`` after the confirmation (what fails a night); and the nights with
at least one confirmed ``slower`` (exit 1).

    PYTHONPATH=. python tests/data/nightly/aa/false_alarms.py [--nights 2000] [--dir SET ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
VISITS = 5


@dataclasses.dataclass
class Tally:
    nights: int = 0
    configurations: int = 0
    slower: int = 0
    faster: int = 0
    not_comparable: int = 0
    confirmed: int = 0
    failed_nights: int = 0

    def line(self, what: str) -> str:
        n = max(self.configurations, 1)
        return (f"{what}: {self.nights} nights, {self.configurations} configuration-nights: "
                f"slower {self.slower} ({self.slower / n:.1%}), faster {self.faster} ({self.faster / n:.1%}) "
                f"by the rank test, not comparable (load) {self.not_comparable} ({self.not_comparable / n:.1%}); slower after confirmation {self.confirmed} ({self.confirmed / n:.2%}); "
                f"nights failed {self.failed_nights} ({self.failed_nights / max(self.nights, 1):.1%})")


def sets() -> list[Path]:
    return sorted(path for path in HERE.glob("set*") if path.is_dir())


def runs(directory: Path) -> list[Path]:
    return sorted(directory.glob("pair*_[ab].csv"))


def _read(paths, load_guard: bool = True):
    """The runs as frames; without ``load_guard`` their other_cpu_frac is forgotten (to show what
    the rank test and the confirmation do on their own)."""
    from kbench.results.frame import read_sweep

    frames = [read_sweep(path) for path in paths]
    if not load_guard:
        for frame in frames:
            frame["other_cpu"] = float("nan")
    return frames


def _night(tally: Tally, base, new, visit_frames, rng: np.random.Generator | None) -> None:
    """One night: compare, then confirm each slower row against ``visit_frames``."""
    from kbench.nightly.compare import compare_frames
    from kbench.nightly.confirm import choose_control
    from kbench.results import stats

    if rng is not None:
        base, new = _resampled(base, rng), _resampled(new, rng)
        visit_frames = [_resampled(frame, rng) for frame in visit_frames]
    rows = compare_frames(base, new)
    tally.nights += 1
    tally.configurations += len(rows)
    base_rounds = dict(zip(base["key"], base["round_values"]))
    visit_values = [dict(zip(frame["key"], frame["throughput"])) for frame in visit_frames]
    failed = False
    for row in rows:
        tally.faster += row["verdict"] == stats.FASTER
        tally.not_comparable += row["verdict"] == stats.NOT_COMPARABLE
        if row["verdict"] != stats.SLOWER:
            continue
        tally.slower += 1
        control = choose_control(row, rows)
        now_s = [values[row["key"]] for values in visit_values]
        now_c = [values[control["key"]] for values in visit_values] if control else None
        result = stats.confirm_slowdown(base_rounds[row["key"]], base_rounds[control["key"]] if control else None,
                                        now_s, now_c, row["min_effect"])
        if result.confirmed:
            tally.confirmed += 1
            failed = True
    tally.failed_nights += failed


def _resampled(frame, rng: np.random.Generator):
    """The frame with each ok row's rounds drawn again, with replacement, from its own rounds."""
    frame = frame.copy()
    rounds = [list(rng.choice(values, size=len(values), replace=True)) if len(values) else values
              for values in frame["round_values"]]
    frame["round_values"] = rounds
    frame["throughput"] = [float(np.median(values)) if len(values) else value
                           for values, value in zip(rounds, frame["throughput"])]
    return frame


def pairs(directory: Path, load_guard: bool = True) -> Tally:
    """The recorded pairs, as nights (see the module docstring)."""
    paths = runs(directory)
    frames = dict(zip(paths, _read(paths, load_guard)))
    tally = Tally()
    names = sorted({path.name[:6] for path in paths})
    for index, name in enumerate(names):
        base, new = frames[directory / f"{name}_a.csv"], frames[directory / f"{name}_b.csv"]
        others = [frames[path] for path in paths if not path.name.startswith(name)]
        start = (2 * index) % len(others)
        visits = (others[start:] + others[:start])[:VISITS]
        _night(tally, base, new, visits, None)
    return tally


def simulate(directory: Path, nights: int = 2000, seed: int = 0, load_guard: bool = True) -> Tally:
    """Resampled nights (see the module docstring)."""
    frames = _read(runs(directory), load_guard)
    picker = random.Random(seed)
    rng = np.random.default_rng(seed)
    tally = Tally()
    for _ in range(nights):
        chosen = picker.sample(range(len(frames)), 2 + VISITS)
        _night(tally, frames[chosen[0]], frames[chosen[1]], [frames[i] for i in chosen[2:]], rng)
    return tally


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nights", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, nargs="+", default=sets(),
                        help="directories of pairNN_{a,b}.csv (default: every set*/ of this one)")
    args = parser.parse_args(argv)
    for directory in args.dir:
        for guard in (True, False):
            what = "" if guard else " without the load guard"
            print(pairs(directory, guard).line(f"{directory.name}: recorded pairs{what}"))
            print(simulate(directory, args.nights, args.seed, guard).line(f"{directory.name}: resampled nights{what}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
