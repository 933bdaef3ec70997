"""What warm workers buy: the wall time of one ``kbench sweep`` of four small models against the
same sweep of each model alone (same flags, a fresh profile cache each, so profiling counts).

    .venv/bin/python benchmarks/warm_workers.py [--models lenet5,resnet18,mobilenet_v2_040,shufflenet_v2_x0_5] [--repeats 3]

Prints one JSON object: the four-model sweep's wall time and each one-model sweep's, in seconds
(the median of ``--repeats`` runs of each, the runs of one repeat back to back, so that a drift
of the machine reaches all), and two ratios: against the mean of the one-model sweeps (the cost
of "a sweep of one of them") and against the first model alone (here lenet5, which costs almost
nothing beyond the fixed cost: the strictest reading). Each configuration is short (a few
steps), so a sweep's cost is its fixed part (starting the parent and one warm worker, importing
TensorFlow once) plus each model's builds and traces; with one warm worker per backend the
four-model sweep pays the fixed part once, as a one-model sweep does. A benchmark, not a test:
it measures time (run it on an idle machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLAGS = ["--input-size", "32", "--batch-sizes", "1,4", "--modes", "infer", "--no-jit", "--iters", "3",
         "--rounds", "2", "--warmup", "1", "--no-progress"]


def sweep_seconds(models: str, folder: Path) -> float:
    folder.mkdir()
    command = [sys.executable, "-m", "kbench", "sweep", "--models", models, *FLAGS,
               "--out", str(folder / "sweep.csv"), "--profile-cache", str(folder / "cache")]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet5,resnet18,mobilenet_v2_040,shufflenet_v2_x0_5")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    models = args.models.split(",")
    alone: dict[str, list[float]] = {name: [] for name in models}
    together: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name in models:
                alone[name].append(sweep_seconds(name, Path(tmp) / f"{name}{repeat}"))
            together.append(sweep_seconds(args.models, Path(tmp) / f"all{repeat}"))
    each = {name: statistics.median(times) for name, times in alone.items()}
    all_models, mean_one = statistics.median(together), statistics.mean(each.values())
    print(json.dumps({"models": args.models, "all_models_s": round(all_models, 1),
                      "one_model_s": {name: round(t, 1) for name, t in each.items()},
                      "ratio_to_mean_one_model": round(all_models / mean_one, 2),
                      "ratio_to_first_model": round(all_models / each[models[0]], 2),
                      "all_models_runs_s": [round(t, 1) for t in together],
                      "one_model_runs_s": {name: [round(t, 1) for t in times] for name, times in alone.items()},
                      "flags": " ".join(FLAGS)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
