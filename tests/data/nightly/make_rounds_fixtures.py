"""Measure sweep rows with R rounds on this machine, for the committed test fixtures.

Run once, by hand (it measures; the test suite never runs it): the CSVs it wrote are committed
beside it and described in README.md there. Before the sweep itself records rounds, this
script is the smallest stand-in: for each configuration it builds the model and its compiled
step with ``kbench.timing.prepare`` (Keras' own train/predict step, as the sweep measures it),
runs one warm-up block, then R rounds of ``--iters`` timed steps with ``kbench.timing.timed_loop``
(one clock read per step), and writes one row per configuration in the sweep's columns plus the
round columns proposed for it (``kbench.stats.summarize_rounds``).

``--slow MODEL:BATCH:MODE`` injects a real slowdown into that configuration: after every step
(warm-up included) it sleeps 30% of the median warm-up step time measured before the injection,
so that configuration's steps really take ~1.3x as long (throughput ~ -23%).

    KERAS_BACKEND=tensorflow .venv/bin/python tests/data/nightly/make_rounds_fixtures.py \
        --out tests/data/nightly/rounds_a.csv [--date 2026-11-01 --commit abc123] [--slow resnet18:8:train]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from kbench import env, registry, timing  # noqa: E402
from kbench.csvio import RowWriter  # noqa: E402
from kbench.layer_walk import count_params  # noqa: E402
from kbench.macs import count_macs  # noqa: E402
from kbench.stats import summarize_rounds  # noqa: E402
from kbench.sweep import SWEEP_COLUMNS  # noqa: E402

ROUND_COLUMNS = ("samples_per_s_iqr", "rounds", "samples_per_s_rounds")
SLOWDOWN = 0.30


def measure_rounds(cfg: dict, rounds: int, slow: bool) -> dict:
    model, step, sync = timing.prepare(cfg)
    started = time.perf_counter()
    sync(step())
    compile_s = time.perf_counter() - started
    warm = timing.timed_loop(step, sync, cfg["warmup"])
    if slow:
        pause = SLOWDOWN * statistics.median(warm)
        fast_step = step

        def step():
            out = fast_step()
            sync(out)
            time.sleep(pause)
            return out
    per_round, all_steps = [], []
    for _ in range(rounds):
        times = timing.timed_loop(step, sync, cfg["iters"])
        per_round.append(cfg["batch_size"] * len(times) / sum(times))
        all_steps.extend(times)
    return {**summarize_rounds(per_round, all_steps), "compile_s": compile_s,
            "params_trainable": count_params(model)["params_trainable"], "macs": count_macs(model)["macs"],
            "peak_mem_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--models", default="lenet5,resnet18")
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--modes", default="infer,train")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iters", type=int, default=20, help="timed steps per round")
    parser.add_argument("--slow", default="", help="MODEL:BATCH:MODE to slow down by 30%%")
    parser.add_argument("--date", help="YYYY-MM-DD recorded in timestamp (a fixture 'night')")
    parser.add_argument("--commit", help="recorded git_commit")
    args = parser.parse_args(argv)

    environment = env.environment("cpu", None, env.package_version("tensorflow"))
    if args.commit:
        environment["git_commit"] = args.commit
    writer = RowWriter(args.out, SWEEP_COLUMNS + ROUND_COLUMNS)
    run_id = env.new_run_id()
    for name in args.models.split(","):
        request = registry.resolve(name, (args.input_size, args.input_size))
        h, w, c = request.input_shape
        for mode in args.modes.split(","):
            for batch in (int(b) for b in args.batch_sizes.split(",")):
                cfg = {"request": request.to_payload(), "batch_size": batch, "mode": mode, "precision": "float32",
                       "jit": False, "warmup": args.warmup, "iters": args.iters}
                slow = args.slow == f"{name}:{batch}:{mode}"
                result = measure_rounds(cfg, args.rounds, slow)
                stamp = env.timestamp() if not args.date else f"{args.date}T02:00:00+00:00"
                row = {"run_id": run_id, "timestamp": stamp, "model": name, "family": request.family,
                       "input_h": h, "input_w": w, "batch_size": batch, "mode": mode, "backend": "tensorflow",
                       "precision": "float32", "jit": "false", "status": "ok", "error": "",
                       **{k: environment[k] for k in env.ENV_COLUMNS}, "device": "cpu",
                       "input_c": c, "variant": request.variant_text, "num_classes": request.num_classes,
                       "n_iters": args.iters, "warmup": args.warmup, "flops_multiplier": 3 if mode == "train" else 1,
                       "peak_mem_source": "rss"}
                for key, value in result.items():
                    row[key] = f"{value:.6g}" if isinstance(value, float) else value
                writer.write(row)
                print(f"{name} b{batch} {mode}{' SLOWED' if slow else ''}: {row['samples_per_s']} samples/s "
                      f"rounds {row['samples_per_s_rounds']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
