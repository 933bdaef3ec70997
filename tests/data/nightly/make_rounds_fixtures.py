"""Measure sweep rows with R rounds on this machine, for the committed test fixtures.

Run once, by hand (it measures; the test suite never runs it): the CSVs it wrote are committed
beside it and described in README.md there. Before the sweep itself records rounds, this
script is the smallest stand-in: for each configuration it builds the model and its compiled
step with ``kbench.running.timing.prepare`` (Keras' own train/predict step, as the sweep measures it),
runs one warm-up block, then R rounds of ``--iters`` timed steps with ``kbench.running.timing.timed_loop``
(one clock read per step), and writes one row per configuration in the sweep's columns plus the
round columns proposed for it (``kbench.results.stats.summarize_rounds``).

``--slow MODEL:BATCH:MODE`` injects a real slowdown into that configuration: after every step
(compile and warm-up included) it sleeps 30% of that step's own duration, so that
configuration's steps really take 1.3x as long (throughput -23%).

    KERAS_BACKEND=tensorflow .venv/bin/python tests/data/nightly/make_rounds_fixtures.py \
        --out tests/data/nightly/rounds_a.csv [--slow resnet18:8:train]
    ... --out DIR --history-nights 8 --slow-from 5 --commits C1,...,C8 --slow resnet18:8:train
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from kbench.common import env
from kbench.models import registry
from kbench.running import timing  # noqa: E402
from kbench.common.csvio import RowWriter  # noqa: E402
from kbench.counting.layer_walk import count_params  # noqa: E402
from kbench.counting.macs import count_macs  # noqa: E402
from kbench.results.stats import summarize_rounds  # noqa: E402
from kbench.results.schema import SWEEP_COLUMNS  # noqa: E402

ROUND_COLUMNS = ("samples_per_s_iqr", "rounds", "samples_per_s_rounds")
SLOWDOWN = 0.30


def slowed(step, sync):
    """The same step, made really slower: after each call, a pause of SLOWDOWN x that call's own
    duration, so every step takes 1.3x as long whatever the machine's load does meanwhile."""
    def slow_step():
        started = time.perf_counter()
        out = step()
        sync(out)
        time.sleep(SLOWDOWN * (time.perf_counter() - started))
        return out
    return slow_step


def measure_rounds(cfg: dict, rounds: int, slow: bool) -> dict:
    model, step, sync = timing.prepare(cfg)
    if slow:
        step = slowed(step, sync)
    started = time.perf_counter()
    sync(step())
    compile_s = time.perf_counter() - started
    timing.timed_loop(step, sync, cfg["warmup"])
    per_round, all_steps = [], []
    for _ in range(rounds):
        times = timing.timed_loop(step, sync, cfg["iters"])
        per_round.append(cfg["batch_size"] * len(times) / sum(times))
        all_steps.extend(times)
    return {**summarize_rounds(per_round, all_steps), "compile_s": compile_s,
            "params_trainable": count_params(model)["params_trainable"], "macs": count_macs(model)["macs"],
            "peak_mem_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def make_row(request, cfg, result, environment, run_id, stamp):
    h, w, c = request.input_shape
    mode, batch = cfg["mode"], cfg["batch_size"]
    row = {"run_id": run_id, "timestamp": stamp, "model": request.name, "family": request.family,
           "input_h": h, "input_w": w, "batch_size": batch, "mode": mode, "backend": "tensorflow",
           "precision": "float32", "jit": "false", "status": "ok", "error": "",
           **{k: environment[k] for k in env.ENV_COLUMNS}, "device": "cpu",
           "input_c": c, "variant": request.variant_text, "num_classes": request.num_classes,
           "n_iters": cfg["iters"], "warmup": cfg["warmup"], "flops_multiplier": 3 if mode == "train" else 1,
           "peak_mem_source": "rss"}
    for key, value in result.items():
        row[key] = f"{value:.6g}" if isinstance(value, float) else value
    return row


def configurations(args):
    for name in args.models.split(","):
        request = registry.resolve(name, (args.input_size, args.input_size))
        for mode in args.modes.split(","):
            for batch in (int(b) for b in args.batch_sizes.split(",")):
                cfg = {"request": request.to_payload(), "batch_size": batch, "mode": mode, "precision": "float32",
                       "jit": False, "warmup": args.warmup, "iters": args.iters}
                yield request, cfg, args.slow == f"{name}:{batch}:{mode}"


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
    parser.add_argument("--history-nights", type=int, default=0,
                        help="write that many nights into the directory --out instead (see write_history)")
    parser.add_argument("--slow-from", type=int, default=0, help="with --history-nights: first slowed night (1-based)")
    parser.add_argument("--commits", default="", help="with --history-nights: one commit per night, comma-separated")
    parser.add_argument("--first-date", default="2026-11-01", help="with --history-nights: the first night's date")
    args = parser.parse_args(argv)

    environment = env.environment("cpu", None, env.package_version("tensorflow"))
    columns = SWEEP_COLUMNS + ROUND_COLUMNS
    if args.history_nights:
        return write_history(args, environment, columns)
    if args.commit:
        environment["git_commit"] = args.commit
    writer = RowWriter(args.out, columns)
    run_id = env.new_run_id()
    for request, cfg, slow in configurations(args):
        result = measure_rounds(cfg, args.rounds, slow)
        stamp = env.timestamp() if not args.date else f"{args.date}T02:00:00+00:00"
        row = make_row(request, cfg, result, environment, run_id, stamp)
        writer.write(row)
        print(f"{request.name} b{cfg['batch_size']} {cfg['mode']}{' SLOWED' if slow else ''}: "
              f"{row['samples_per_s']} samples/s rounds {row['samples_per_s_rounds']}", file=sys.stderr)
    return 0


def write_history(args, environment, columns) -> int:
    """Nights of a results directory, ``--out/sweep-YYYY-MM-DD.csv``. Configuration by
    configuration, its nights are measured one after another, each with a freshly built model
    and step (``kbench.running.timing.prepare``), so that the slow drift of a shared machine's load lands
    on whole configurations rather than on some nights; ``--slow`` applies from night
    ``--slow-from`` on."""
    import datetime

    commits = args.commits.split(",")
    if len(commits) != args.history_nights:
        raise SystemExit("--commits needs one commit per night")
    first = datetime.date.fromisoformat(args.first_date)
    dates = [(first + datetime.timedelta(days=n)).isoformat() for n in range(args.history_nights)]
    rows_per_night = [[] for _ in dates]
    for request, cfg, slow in configurations(args):
        for night, date in enumerate(dates):
            slow_tonight = slow and args.slow_from and night + 1 >= args.slow_from
            result = measure_rounds(cfg, args.rounds, slow_tonight)
            environment = {**environment, "git_commit": commits[night]}
            rows_per_night[night].append(make_row(request, cfg, result, environment, f"night-{date}",
                                                  f"{date}T02:00:00+00:00"))
            print(f"{date} {request.name} b{cfg['batch_size']} {cfg['mode']}{' SLOWED' if slow_tonight else ''}: "
                  f"{result['samples_per_s']:.4g} samples/s", file=sys.stderr)
    for date, rows in zip(dates, rows_per_night):
        writer = RowWriter(f"{args.out}/sweep-{date}.csv", columns)
        for row in rows:
            writer.write(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
