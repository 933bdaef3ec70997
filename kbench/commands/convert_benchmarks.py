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

Every field is type-checked before anything is written (a number must be a finite number,
``extra_info``/``machine_info`` objects, ``input_shape`` a list of up to three integers...):
a malformed file is one line and exit 2. ``--out`` never replaces an existing file unless
``--force`` is given (``kbench.common.outputs``).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from kbench.errors import UsageError

NAME = "convert-benchmarks"
HELP = "convert pytest-benchmark JSON (--benchmark-json) into the sweep CSV format"


def add_arguments(parser):
    parser.allow_abbrev = False
    parser.add_argument("json_file", help="file written by pytest --benchmark-json")
    parser.add_argument("--out", help="CSV to write (default: standard output)")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")


def _number(value, what: str, *, positive: bool = False, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{what} must be a finite number, got {value!r}"[:300])
    if positive and value <= 0:
        raise UsageError(f"{what} must be positive, got {value!r}")
    return float(value)


def _integer(value, what: str, *, minimum: int = 0, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{what} must be an integer >= {minimum}, got {value!r}"[:300])
    return value


def _mapping(value, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UsageError(f"{what} must be an object, got {type(value).__name__}")
    return value


def _text(value, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UsageError(f"{what} must be a string, got {type(value).__name__}")
    return str(value)


def convert(data: dict, source: str = "benchmark JSON") -> list[dict]:
    import numpy as np

    from kbench.results.schema import significant

    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise UsageError(f"malformed {source}: no 'benchmarks' list (is it a pytest-benchmark --benchmark-json file?)")
    machine = _mapping(data.get("machine_info"), f"malformed {source}: 'machine_info'")
    commit = _mapping(data.get("commit_info"), f"malformed {source}: 'commit_info'")
    cpu = _mapping(machine.get("cpu"), f"malformed {source}: 'machine_info.cpu'")
    when = _text(data.get("datetime"), f"malformed {source}: 'datetime'")
    run_id = "bench-" + "".join(ch for ch in when[:19] if ch.isdigit())
    commit_id = _text(commit.get("id"), f"malformed {source}: 'commit_info.id'")
    git = commit_id[:12] + ("+dirty" if commit.get("dirty") and commit_id else "")
    rows = []
    for index, bench in enumerate(data["benchmarks"]):
        if not isinstance(bench, dict) or not isinstance(bench.get("stats"), dict):
            raise UsageError(f"malformed {source}: benchmark #{index} has no 'stats'")
        name = _text(bench.get("name"), f"malformed {source}: benchmark #{index} 'name'") or f"benchmark_{index}"
        where = f"malformed {source}: benchmark {name!r}"
        stats = bench["stats"]
        info = _mapping(bench.get("extra_info"), f"{where}: 'extra_info'")
        for key in ("mean", "median", "stddev", "rounds"):
            if key not in stats:
                raise UsageError(f"{where}: stats lack {key!r}")
        mean = _number(stats["mean"], f"{where}: stats.mean", positive=True)
        median = _number(stats["median"], f"{where}: stats.median")
        std = _number(stats["stddev"], f"{where}: stats.stddev")
        minimum = _number(stats.get("min"), f"{where}: stats.min", allow_none=True)
        rounds = _integer(stats["rounds"], f"{where}: stats.rounds", minimum=1)
        iterations = _integer(stats.get("iterations", 1), f"{where}: stats.iterations", minimum=1)
        raw_points = stats.get("data") or []
        if not isinstance(raw_points, list):
            raise UsageError(f"{where}: stats.data must be a list of numbers, got {type(raw_points).__name__}")
        data_points = [_number(v, f"{where}: stats.data[{i}]") for i, v in enumerate(raw_points)]
        batch = _integer(info.get("batch_size"), f"{where}: extra_info.batch_size", minimum=1, allow_none=True)
        shape = info.get("input_shape")
        if shape is None:
            shape = ["", "", ""]
        elif not isinstance(shape, list) or not 1 <= len(shape) <= 3:
            raise UsageError(f"{where}: extra_info.input_shape must be a list [h, w, c], got {shape!r}"[:300])
        else:
            shape = [_integer(v, f"{where}: extra_info.input_shape", minimum=1) for v in shape]
        text = {key: _text(info.get(key), f"{where}: extra_info.{key}") for key in (
            "model", "family", "mode", "backend", "precision", "device", "device_kind", "host", "kbench_version",
            "tf_version", "keras_version", "backend_version", "git_commit", "python_version")}
        counts = {key: _integer(info.get(key), f"{where}: extra_info.{key}", allow_none=True)
                  for key in ("warmup", "params_trainable", "macs", "flops_tf")}
        row = {
            "run_id": run_id, "timestamp": when, "model": text["model"] or name,
            "family": text["family"] or _text(bench.get("group"), f"{where}: 'group'") or "benchmark",
            "input_h": shape[0], "input_w": shape[1] if len(shape) > 1 else "", "input_c": shape[2] if len(shape) > 2 else "",
            "batch_size": batch or "", "mode": text["mode"], "backend": text["backend"],
            "precision": text["precision"],
            "jit": "" if "jit" not in info else ("true" if info["jit"] else "false"),
            "status": "ok", "error": "",
            "samples_per_s": significant(batch / mean) if batch else "",
            "latency_ms_p50": significant(median * 1000),
            "latency_ms_p90": significant(float(np.percentile(data_points, 90)) * 1000) if data_points else "",
            "latency_ms_p99": significant(float(np.percentile(data_points, 99)) * 1000) if data_points else "",
            "latency_ms_std": significant(std * 1000), "latency_ms_mean": significant(mean * 1000),
            "latency_ms_min": significant(minimum * 1000) if minimum is not None else "",
            "cv": significant(std / mean, 4),
            "n_iters": rounds * iterations, "warmup": "" if counts["warmup"] is None else counts["warmup"],
            **{k: "" if counts[k] is None else counts[k] for k in ("params_trainable", "macs", "flops_tf")},
            "device": text["device"],
            "device_kind": text["device_kind"] or _text(cpu.get("brand_raw"), f"malformed {source}: cpu.brand_raw"),
            "host": text["host"] or _text(machine.get("node"), f"malformed {source}: machine_info.node"),
            "kbench_version": text["kbench_version"], "tf_version": text["tf_version"],
            "keras_version": text["keras_version"], "backend_version": text["backend_version"],
            "git_commit": text["git_commit"] or git,
            "python_version": text["python_version"] or _text(machine.get("python_version"),
                                                              f"malformed {source}: machine_info.python_version"),
        }
        rows.append(row)
    return rows


def run(args) -> int:
    from kbench.common import outputs
    from kbench.common.csvio import to_csv_text
    from kbench.results.schema import SWEEP_COLUMNS

    path = Path(args.json_file)
    if args.out:
        outputs.check_output(args.out, "--out", overwrite=args.force)
        if Path(args.out).resolve() == path.resolve():
            raise UsageError(f"--out {args.out!r} is the input file; choose another file")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise UsageError(f"malformed JSON in {str(path)!r}: {exc}") from None
    rows = convert(data, source=repr(str(path)))
    text = to_csv_text(SWEEP_COLUMNS, rows)
    if args.out:
        outputs.write_text(args.out, text, "--out", overwrite=args.force)
    else:
        sys.stdout.write(text)
    if args.out:
        print(f"kbench: wrote {len(rows)} {'row' if len(rows) == 1 else 'rows'} to {args.out}", file=sys.stderr)
    return 0
