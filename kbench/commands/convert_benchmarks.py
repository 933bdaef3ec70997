"""``kbench convert-benchmarks``: pytest-benchmark JSON -> rows in the sweep CSV format.

Each benchmark becomes one ``status=ok`` row. ``latency_ms_*`` come from the per-round times
(one round = one step in ``benchmarks/``; p90/p99 from the raw ``data`` pytest-benchmark
stores, empty if absent), ``samples_per_s = batch_size / mean round time`` and ``n_iters`` =
rounds x iterations. Batch size, input, mode, backend, precision, jit and the environment
columns come from the benchmark's ``extra_info`` (``benchmarks/conftest.py`` fills them);
where absent, the model column is the benchmark's name, ``samples_per_s`` is left empty (a
"sample" is unknown) and the host/commit come from pytest-benchmark's ``machine_info`` /
``commit_info``. Columns a micro-benchmark does not measure (compile_s, peak_mem_mb, FLOPs
unless given) stay empty.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kbench.errors import UsageError

NAME = "convert-benchmarks"
HELP = "convert pytest-benchmark JSON (--benchmark-json) into the sweep CSV format"


def add_arguments(parser):
    parser.add_argument("json_file", help="file written by pytest --benchmark-json")
    parser.add_argument("--out", help="CSV to write (default: standard output)")


def convert(data: dict, source: str = "benchmark JSON") -> list[dict]:
    import numpy as np

    from kbench.sweep import significant

    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise UsageError(f"malformed {source}: no 'benchmarks' list (is it a pytest-benchmark --benchmark-json file?)")
    machine = data.get("machine_info") or {}
    commit = data.get("commit_info") or {}
    when = str(data.get("datetime", ""))
    run_id = "bench-" + "".join(ch for ch in when[:19] if ch.isdigit())
    git = (commit.get("id") or "")[:12] + ("+dirty" if commit.get("dirty") and commit.get("id") else "")
    rows = []
    for index, bench in enumerate(data["benchmarks"]):
        if not isinstance(bench, dict) or not isinstance(bench.get("stats"), dict):
            raise UsageError(f"malformed {source}: benchmark #{index} has no 'stats'")
        stats, info = bench["stats"], bench.get("extra_info") or {}
        try:
            mean, median, std = float(stats["mean"]), float(stats["median"]), float(stats["stddev"])
            rounds, iterations = int(stats["rounds"]), int(stats.get("iterations", 1))
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"malformed {source}: benchmark {bench.get('name', index)!r} stats lack {exc}") from None
        data_points = [float(v) for v in stats.get("data") or []]
        batch = info.get("batch_size")
        shape = info.get("input_shape") or ["", "", ""]
        row = {
            "run_id": run_id, "timestamp": when, "model": info.get("model") or bench.get("name", f"benchmark_{index}"),
            "family": info.get("family") or (bench.get("group") or "benchmark"),
            "input_h": shape[0], "input_w": shape[1] if len(shape) > 1 else "", "input_c": shape[2] if len(shape) > 2 else "",
            "batch_size": batch or "", "mode": info.get("mode", ""), "backend": info.get("backend", ""),
            "precision": info.get("precision", ""),
            "jit": "" if "jit" not in info else ("true" if info["jit"] else "false"),
            "status": "ok", "error": "",
            "samples_per_s": significant(batch / mean) if (batch and mean > 0) else "",
            "latency_ms_p50": significant(median * 1000),
            "latency_ms_p90": significant(float(np.percentile(data_points, 90)) * 1000) if data_points else "",
            "latency_ms_p99": significant(float(np.percentile(data_points, 99)) * 1000) if data_points else "",
            "latency_ms_std": significant(std * 1000), "latency_ms_mean": significant(mean * 1000),
            "latency_ms_min": significant(float(stats.get("min", "nan")) * 1000),
            "cv": significant(std / mean, 4) if mean > 0 else "",
            "n_iters": rounds * iterations, "warmup": info.get("warmup", ""),
            "params_trainable": info.get("params_trainable", ""), "macs": info.get("macs", ""),
            "flops_tf": info.get("flops_tf", ""),
            "device": info.get("device", ""), "device_kind": info.get("device_kind") or (machine.get("cpu") or {}).get("brand_raw", ""),
            "host": info.get("host") or machine.get("node", ""),
            "kbench_version": info.get("kbench_version", ""), "tf_version": info.get("tf_version", ""),
            "keras_version": info.get("keras_version", ""), "backend_version": info.get("backend_version", ""),
            "git_commit": info.get("git_commit") or git,
            "python_version": info.get("python_version") or machine.get("python_version", ""),
        }
        rows.append(row)
    return rows


def run(args) -> int:
    from kbench.commands._common import emit
    from kbench.csvio import to_csv_text
    from kbench.sweep import SWEEP_COLUMNS

    path = Path(args.json_file)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"malformed JSON in {str(path)!r}: {exc}") from None
    rows = convert(data, source=repr(str(path)))
    emit(to_csv_text(SWEEP_COLUMNS, rows), args.out)
    if args.out:
        print(f"kbench: wrote {len(rows)} rows to {args.out}", file=sys.stderr)
    return 0
