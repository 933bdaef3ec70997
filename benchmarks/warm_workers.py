"""What warm workers buy: the wall time of one ``kbench sweep`` of four small models against the
same sweep of the first one alone (same flags, a fresh profile cache each, so profiling counts).

    .venv/bin/python benchmarks/warm_workers.py [--models lenet5,resnet18,mobilenet_v2_040,shufflenet_v2_x0_5] [--repeats 3]

Prints one JSON object: both wall times in seconds (the median of ``--repeats`` runs of each,
alternating, so that a drift of the machine reaches both) and the ratio of the medians, with
every run's times. Each configuration is short
(a few steps), so the sweeps' cost is mostly starting workers and building models: with one warm
worker per backend the four-model sweep pays TensorFlow's import once, as the one-model sweep
does. A benchmark, not a test: it measures time (run it on an idle machine).
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
    ones, alls = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            ones.append(sweep_seconds(args.models.split(",")[0], Path(tmp) / f"one{repeat}"))
            alls.append(sweep_seconds(args.models, Path(tmp) / f"all{repeat}"))
    one, four = statistics.median(ones), statistics.median(alls)
    print(json.dumps({"models": args.models, "one_model_s": round(one, 1), "all_models_s": round(four, 1),
                      "ratio": round(four / one, 2), "one_model_runs_s": [round(t, 1) for t in ones],
                      "all_models_runs_s": [round(t, 1) for t in alls], "flags": " ".join(FLAGS)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
