"""``kbench profile``: parameters, TF-profiler FLOPs, MACs and uncounted ops of models.

Outputs: ``--format table`` (default; 25.56M / 4.09G, units in the headers), ``markdown`` and
``latex`` for papers (the columns a paper needs, counts scaled to M or G with the unit in the
header; LaTeX as a booktabs ``table`` with caption and label); ``csv`` and ``json`` with the raw
integers. CSV: one row per model (``PROFILE_COLUMNS``), or with ``--per-layer`` one row per layer
(or group of layers) and model (``PER_LAYER_CSV_COLUMNS``). JSON: always one object
``{"environment": {...}, "models": [...]}``, each model a profile record (the README's "CSV
reports") plus the CSV's fields (num_classes, variant, status, reported figures with their
convention and input size).
"""

from __future__ import annotations

import json
import re
import sys

from kbench.common import env, outputs
from kbench.models import selectors
from kbench.common import validate as check
from kbench.commands._common import add_model_arguments, add_output_arguments, model_options, write
from kbench.common.validate import check_variant
from kbench.common.csvio import ROW_CHECK_COLUMN, RowWriter, read_rows, to_csv_text
from kbench.errors import UsageError
from kbench.common.humanize import human_count, model_label
from kbench.counting.sizes import SIZE_KEYS
from kbench.models.session import freeze_survivors

NAME = "profile"
HELP = "count parameters, FLOPs (TF profiler) and MACs of a model"

# The parameter counts (kbench.counting.layer_walk.count_params): the papers' count first.
PARAMS_COLUMNS = ("params", "params_trainable", "params_non_trainable", "params_keras_total")
SIZE_COLUMNS = SIZE_KEYS  # torchinfo's memory estimate per image (kbench.counting.sizes)
PROFILE_COLUMNS = (
    "run_id", "timestamp", "model", "family", "input_h", "input_w", "input_c", "variant", "status", "error",
    *PARAMS_COLUMNS, "macs", "flops_tf", "flops_tf_per_2macs",
    "flops_tf_dilation_padding", "uncounted_ops", "mem_access", "reported_params", "reported_macs", "reported_source", "profile_s",
    "num_classes", "reported_convention", "reported_input_size", "activations", "convention", "part", "convention_flops",
    *SIZE_COLUMNS,
) + env.ENV_COLUMNS + (ROW_CHECK_COLUMN,)  # last: filled by the CSV writer, a torn row fails it
LAYER_COLUMNS = ("name", "type", "input_shape", "output_shape", "params", "params_pct", "macs", "macs_pct",
                 "flops_tf", "mem_access", "activations", "uncounted_ops")
PER_LAYER_CSV_COLUMNS = ("model", "input_h", "input_w", "variant", "num_classes") + LAYER_COLUMNS + ("convention_flops",
                                                                                       ROW_CHECK_COLUMN)


def add_arguments(parser):
    parser.add_argument("model", metavar="MODELS", help="model selector: names, 'resnet*', family:F, all, @FILE, PATH.keras or "
                        "package.module:factory, comma-separated (README, 'Model selectors')")
    add_model_arguments(parser)
    parser.add_argument("--per-layer", action="store_true",
                        help="add a per-Keras-layer table (with --format csv: per-layer rows instead of the summary)")
    parser.add_argument("--depth", help="with --per-layer: group layers N levels deep in the name hierarchy (nested "
                                        "models, then '_'-separated parts: conv2_block1_1_conv is in conv2 at 1)")
    parser.add_argument("--group-by", metavar="REGEX",
                        help="with --per-layer: group layers by what REGEX matches in their names (its first group)")
    parser.add_argument("--columns", metavar="LIST",
                        help="the summary table's columns (table, markdown, latex), comma-separated; "
                             "default: all for table, model,input,params,macs for markdown/latex")
    parser.add_argument("--jobs", metavar="N|auto",
                        help="profile N models at a time, each process one model after another (default auto: one "
                             "per CPU, at most 4, for 8 models or more; else 1)")
    parser.add_argument("--convention", metavar="NAME",
                        help="add convention_flops counted under NAME (see 'kbench conventions')")
    parser.add_argument("--part", metavar="NAME",
                        help="with --convention: the part counted: whole (default), features (no classifier head), "
                             "backbone (no global pooling, no head)")
    parser.add_argument("--resume", action="store_true",
                        help="with --format csv --out: append, skipping models already in the file")
    add_output_arguments(parser)


def _shape_columns(shape):
    """``input_h, input_w, input_c`` of an image input; blank for an input of another rank (its full
    shape is the JSON record's ``input_shape``)."""
    if len(shape) == 3:
        return dict(zip(("input_h", "input_w", "input_c"), shape))
    return {"input_h": "", "input_w": "", "input_c": ""}


def _flat_row(record, request, run_id, environment, seconds):
    reported = request.spec.primary_reported
    return {
        "run_id": run_id, "timestamp": env.timestamp(), "model": request.name, "family": request.family,
        **_shape_columns(record["input_shape"]), "variant": request.variant_text,
        "status": "ok", "error": "",
        **{key: record[key] for key in PARAMS_COLUMNS}, "macs": record["macs"],
        "flops_tf": record["flops_tf"],
        "flops_tf_per_2macs": round(record["flops_tf"] / (2 * record["macs"]), 6) if record["macs"] else "",
        "uncounted_ops": ";".join(f"{k}:{v}" for k, v in record["uncounted_ops"].items()),
        "mem_access": record["mem_access"], "activations": record["activations"],
        "convention": record.get("convention", ""), "part": record.get("part", ""),
        "convention_flops": record.get("convention_flops", ""),
        **{key: record[key] for key in SIZE_COLUMNS},
        "flops_tf_dilation_padding": record["flops_tf_dilation_padding"],
        "reported_params": reported.params if reported else "", "reported_macs": reported.macs if reported else "",
        "reported_source": reported.source if reported else "", "profile_s": round(seconds, 3),
        **_reported_context(request),
        **environment,
    }


def _error_row(request, error: str, run_id, environment):
    return {"run_id": run_id, "timestamp": env.timestamp(), "model": request.name, "family": request.family,
            **_shape_columns(request.input_shape), "status": "error", "error": error, "num_classes": _classes(request),
            **environment}


def _error_text(exc) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]


# ---- profiling the requests: in this process, or N at a time in worker processes ----------------
PARALLEL_MIN_MODELS = 8  # fewer: starting workers (each imports TensorFlow) costs more than it saves
MAX_AUTO_JOBS = 4  # each worker holds one model and TensorFlow: a few GB for the largest


def _jobs(text: str, requests) -> int:
    """``--jobs``: N, or ``auto`` (one per CPU this process may use, at most ``MAX_AUTO_JOBS``, for
    ``PARALLEL_MIN_MODELS`` models or more); never more than the models, and 1 for a model object
    (Python API), which cannot be sent to another process."""
    import os

    if any(getattr(r.spec, "kind", None) == "object" for r in requests):
        return 1
    if text == "auto":
        wanted = min(len(os.sched_getaffinity(0)), MAX_AUTO_JOBS) if len(requests) >= PARALLEL_MIN_MODELS else 1
    else:
        wanted = int(text)
    return max(1, min(wanted, len(requests)))


def _profiled(requests, jobs, *, per_layer, convention, part):
    """``(request, record or None, error text or None, seconds)`` for each request, in order."""
    import time

    from kbench.counting.profiling import profile

    if jobs == 1:
        for request in requests:
            started = time.perf_counter()
            try:
                record = profile(request, per_layer=per_layer, convention=convention, part=part)
            except UsageError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed model is a row
                yield request, None, _error_text(exc), None
                continue
            yield request, record, None, time.perf_counter() - started
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Spawned (a fresh interpreter, no fork of a process that runs TensorFlow's threads); each worker
    # dies with this process (kbench.running.worker.die_with_parent) and profiles what it is given.
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker)
    try:
        futures = [pool.submit(_profile_in_worker, request.to_payload(), per_layer,
                               convention.name if convention is not None else None, part) for request in requests]
        for request, future in zip(requests, futures):
            status, value, seconds = future.result()
            if status == "usage":
                raise UsageError(value)
            yield (request, value, None, seconds) if status == "ok" else (request, None, value, None)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _start_worker():
    from kbench.counting import profiling
    from kbench.models.session import own_process
    from kbench.running.worker import die_with_parent

    die_with_parent()
    own_process()  # each model's clean-up collects only that model (kbench.models.session)
    profiling.require_tensorflow_backend()  # imports Keras and TensorFlow once, before the first model
    freeze_survivors()


def _profile_in_worker(payload, per_layer, convention_name, part):
    """One model in a worker: ``("ok", record, seconds)``, ``("error", text, None)``, or
    ``("usage", message, None)`` for a UsageError (the run stops, as it would in one process)."""
    import time

    from kbench.counting.conventions import CONVENTIONS
    from kbench.counting.profiling import profile
    from kbench.models.registry import ModelRequest

    started = time.perf_counter()
    try:
        convention = CONVENTIONS[convention_name] if convention_name else None
        record = profile(ModelRequest.from_payload(payload), per_layer=per_layer, convention=convention, part=part)
    except UsageError as exc:
        return "usage", str(exc), None
    except Exception as exc:  # noqa: BLE001 - a failed model is a row
        return "error", _error_text(exc), None
    return "ok", record, time.perf_counter() - started


def _classes(request):
    return "" if request.num_classes is None else request.num_classes


def _reported_context(request):
    """num_classes and the reported figure's convention and input size (``HxW``), as CSV fields."""
    reported = request.spec.primary_reported
    # A figure without its own input size is for the model's default input; one without a named
    # convention counts MACs (and trainable parameters), the papers' convention.
    size = (reported.input_size or request.spec.default_input_shape[:2]) if reported else None
    return {"num_classes": _classes(request),
            "reported_convention": (reported.convention or "macs") if reported else "",
            "reported_input_size": "x".join(map(str, size)) if size else ""}


def _label(request):
    """The model as built: its name, plus the --set options and a non-default class count."""
    classes = request.num_classes if request.num_classes != request.spec.default_num_classes else None
    return model_label(request.name, dict(request.variant), classes)


def _with_shares(record, depth, pattern):
    """The record's per-layer rows grouped (``--depth``, ``--group-by``), each with its share of
    params and MACs (%)."""
    from kbench.counting.profiling import group_per_layer

    rows = group_per_layer(record["per_layer"], depth, pattern)
    for row in rows:
        row["params_pct"] = round(100 * row["params"] / record["params"], 2) if record["params"] else 0.0
        row["macs_pct"] = round(100 * row["macs"] / record["macs"], 2) if record["macs"] else 0.0
    return rows


def _per_layer_totals(record):
    return {"name": "total", "params": record["params"], "params_pct": 100.0, "macs": record["macs"],
            "macs_pct": 100.0, "flops_tf": record["flops_tf"], "mem_access": record["mem_access"],
            "activations": record.get("activations"), "convention_flops": record.get("convention_flops"),
            "uncounted_ops": record["uncounted_ops"]}


def _per_layer_csv_rows(record, request):
    shape = _shape_columns(request.input_shape)
    context = {"model": request.name, "input_h": shape["input_h"], "input_w": shape["input_w"],
               "variant": request.variant_text,
               "num_classes": _classes(request)}
    return [{**context, **row,
             "input_shape": "x".join(map(str, row["input_shape"])) if row.get("input_shape") else "",
             "output_shape": "x".join(map(str, row["output_shape"])) if row.get("output_shape") else "",
             "uncounted_ops": ";".join(f"{k}:{v}" for k, v in (row.get("uncounted_ops") or {}).items())}
            for row in record["per_layer"]]


def _json_entry(record, row):
    """One model of the JSON document: the profile record plus the CSV's fields of its row."""
    if record is None:  # a model that failed: what was asked and why it failed
        keys = ("model", "family", "input_h", "input_w", "input_c", "variant", "num_classes", "status", "error")
        return {k: row.get(k, "") for k in keys}
    extra = {k: row[k] for k in ("num_classes", "status", "flops_tf_per_2macs", "reported_params", "reported_macs",
                                 "reported_source", "reported_convention", "reported_input_size", "profile_s")}
    return {**record, **extra}


def run(args) -> int:
    from kbench.counting.profiling import require_tensorflow_backend

    # Resolve (and so validate) every request before measuring anything: bad input costs nothing.
    model = model_options(args)
    depth, pattern = _grouping(args)
    convention, part = _convention_and_part(args.convention, args.part)
    columns = _table_columns(args.columns, args.format, convention)
    jobs_text = args.jobs if args.jobs is not None else "auto"
    if jobs_text != "auto":
        check.integer(jobs_text, "--jobs", minimum=1)
    requests = selectors.resolve_requests(args.model, **model)
    for request in requests:
        check_variant(request)
    csv_out = bool(args.out) and args.format == "csv"
    if args.resume and not csv_out:
        raise UsageError("--resume needs --format csv and --out FILE")
    if args.resume and args.force:
        raise UsageError("--resume appends to --out and --force replaces it: pass one of them")
    existing = []
    if args.out:  # before anything is measured: a new path, or --resume/--force for an existing file
        outputs.check_output(args.out, "--out", overwrite=args.force, append=args.resume,
                             hint="pass --resume to append to it, --force to replace it, or choose another file")
        if args.resume:
            existing = read_rows(args.out)  # validates an existing file
    require_tensorflow_backend()
    # Everything imported so far (TensorFlow, Keras, the zoo) lives as long as the process: out of
    # the garbage collector's sight, each model's clean-up collects only that model.
    freeze_survivors()
    environment = env.environment()
    run_id = env.new_run_id()
    csv_columns = PER_LAYER_CSV_COLUMNS if args.per_layer else PROFILE_COLUMNS
    writer = None
    skipped = 0
    if csv_out and not args.force:  # rows appended one by one: a killed run keeps what it measured
        writer = RowWriter(args.out, csv_columns)
        done = {_row_key(r) for r in existing}
        skipped = sum(_request_key(r) in done for r in requests)
        requests = [r for r in requests if _request_key(r) not in done]
    jobs = _jobs(jobs_text, requests)
    log_each = len(requests) > 1  # a long run says what it is doing, one line per model (stderr)
    entries, failures, written = [], 0, 0
    profiled = _profiled(requests, jobs, per_layer=args.per_layer, convention=convention, part=part)
    for index, (request, record, error, seconds) in enumerate(profiled, 1):
        if record is None:  # one failing model is a row with its status, not a dead run
            failures += 1
            row = _error_row(request, error, run_id, environment)
            print(f"kbench: {request.name}: {row['error']}", file=sys.stderr)
        else:
            row = _flat_row(record, request, run_id, environment, seconds)
            if args.per_layer:
                record["per_layer"] = _with_shares(record, depth, pattern)
            if log_each:
                print(f"kbench: [{index}/{len(requests)}] {_label(request)}: {human_count(record['params'])} "
                      f"params, {human_count(record['macs'])} MACs ({seconds:.1f} s)", file=sys.stderr, flush=True)
        entries.append((request, record, row))
        if writer:
            rows = _csv_rows(args.per_layer, [(request, record, row)])
            for csv_row in rows:
                writer.write(csv_row)
            written += len(rows)
    if writer is None:
        if args.format == "csv":
            rows = _csv_rows(args.per_layer, entries)
            text, written = to_csv_text(csv_columns, rows), len(rows)
        elif args.format == "json":
            document = {"environment": {"run_id": run_id, **environment},
                        "models": [_json_entry(record, row) for _, record, row in entries]}
            text, written = json.dumps(document, indent=2) + "\n", len(entries)
        else:
            text, written = _render_table(args.format, entries, args.per_layer, columns, convention, part), len(entries)
        write(text, args)
    if args.out:
        what = "models" if args.format == "json" else "rows"
        message = f"kbench: wrote {written} {_plural(written, what)} to {args.out}"
        if skipped:
            message += f" ({skipped} {_plural(skipped, 'models')} already in the file)"
        print(message, file=sys.stderr)
    return 1 if failures else 0


def _plural(count: int, noun: str) -> str:
    return noun[:-1] if count == 1 and noun.endswith("s") else noun


def _csv_rows(per_layer, entries):
    """Summary rows, or with ``--per-layer`` every model's per-layer rows (a failed model has none)."""
    if not per_layer:
        return [row for _, _, row in entries]
    return [r for request, record, _ in entries if record is not None for r in _per_layer_csv_rows(record, request)]


def _convention_and_part(name, part):
    """The ``kbench.counting.conventions.Convention`` of ``--convention`` (None without it) and ``--part``."""
    from kbench.counting.conventions import CONVENTIONS, PARTS
    from kbench.common.validate import one_of

    if name is None:
        if part is not None:
            raise UsageError("--part needs --convention NAME")
        return None, "whole"
    return CONVENTIONS[one_of(name, "--convention", list(CONVENTIONS))], one_of(part or "whole", "--part", list(PARTS))


def _request_key(request):
    """The CSV resume key of a request: the same fields ``_row_key`` reads from a written row."""
    shape = _shape_columns(request.input_shape)
    return (request.name, str(shape["input_h"]), str(shape["input_w"]), request.variant_text, str(_classes(request)))


def _row_key(row):
    return (row["model"], str(row["input_h"]), str(row["input_w"]), row.get("variant") or "",
            str(row.get("num_classes") or ""))


def _grouping(args):
    """``--depth N`` or ``--group-by REGEX`` (each needs --per-layer) -> (depth, compiled pattern)."""
    if args.depth is not None and args.group_by is not None:
        raise UsageError("--depth and --group-by both group the per-layer rows: pass one of them")
    for flag, value in (("--depth", args.depth), ("--group-by", args.group_by)):
        if value is not None and not args.per_layer:
            raise UsageError(f"{flag} groups the per-layer rows: it needs --per-layer")
    depth = check.integer(args.depth, "--depth", minimum=1) if args.depth is not None else None
    pattern = None
    if args.group_by is not None:
        try:
            pattern = re.compile(args.group_by)
        except re.error as exc:
            raise UsageError(f"--group-by {args.group_by!r} is not a regular expression: {exc}") from None
    return depth, pattern


SUMMARY_TABLE_COLUMNS = ("model", "input_h", "input_w", "params", "macs", "flops_tf",
                         "flops_tf_per_2macs", "mem_access", "activations", "uncounted_ops", "status")
# What a paper's table needs (markdown, latex): the model, its input and its two counts.
PAPER_TABLE_COLUMNS = ("model", "input", "params", "macs")
CONVENTION_TABLE_COLUMNS = ("convention", "part", "convention_flops")
TABLE_ONLY_COLUMNS = ("input",)  # "224x224": input_h x input_w (x input_c when it is not 3)
PER_LAYER_NOTE = ("MACs = multiply-accumulates; FLOPs = TF profiler float operations; memory access = "
                  "elements read + written; activations = conv/dense output elements; %: share of the model's total")


def _table_columns(text, fmt, convention):
    """The summary table's columns: ``--columns``, else the format's default."""
    if fmt not in ("table", "markdown", "latex"):
        if text is not None:
            raise UsageError(f"--columns chooses the columns of a table (--format table, markdown or latex), "
                             f"not of --format {fmt}, which has them all")
        return None
    if text is None:
        if fmt == "table":
            columns = SUMMARY_TABLE_COLUMNS
            return columns[:-2] + CONVENTION_TABLE_COLUMNS + columns[-2:] if convention else columns
        return PAPER_TABLE_COLUMNS + (("convention_flops",) if convention else ())
    allowed = TABLE_ONLY_COLUMNS + tuple(c for c in PROFILE_COLUMNS if c not in ("run_id", ROW_CHECK_COLUMN))
    columns = check.word_list(text, "--columns")
    unknown = [c for c in columns if c not in allowed]
    if unknown or not columns:
        raise UsageError(f"--columns {text!r}: unknown column {unknown[0] if unknown else '(none given)'!r}; "
                         f"allowed: {', '.join(allowed)}")
    return tuple(dict.fromkeys(columns))


def _input_text(row):
    h, w, c = row.get("input_h"), row.get("input_w"), row.get("input_c")
    if h in ("", None):
        return ""
    return f"{h}x{w}" if c in (3, "3") else f"{h}x{w}x{c}"


def _render_table(fmt, entries, per_layer, columns, convention, part):
    from kbench.common.humanize import render_table

    rows = [{**row, "model": _label(request), "input": _input_text(row)} for request, _, row in entries]
    headers, formats, decimals = {}, {}, {}
    if convention is not None:
        headers["convention_flops"] = convention_header(convention)
        formats["convention_flops"] = convention.display
        decimals["convention_flops"] = convention.decimals
    if fmt == "table":
        text = render_table(columns, rows, fmt, headers=headers, formats=formats)
    else:
        text = render_table(columns, rows, fmt, headers=headers, decimals=decimals, scaled=True,
                            caption=_caption(convention, part), label="tab:kbench-profile")
    if per_layer:
        for request, record, _ in entries:
            if record is None:
                continue
            text += f"\n{_label(request)} per layer ({PER_LAYER_NOTE})\n\n"
            layer_columns = LAYER_COLUMNS + (("convention_flops",) if record.get("convention") else ())
            text += render_table(layer_columns, record["per_layer"], fmt, totals=_per_layer_totals(record),
                                 headers=headers, formats=formats)
            text += _sizes_line(record)
    return text


def convention_header(convention) -> str:
    """``mmengine MACs``, ``tf FLOPs``: the convention and the unit its count is in."""
    return f"{convention.name} {'MACs' if convention.unit == 'macs' else 'FLOPs'}"


def _caption(convention, part):
    from kbench.counting.conventions import PARTS
    from kbench.version import __version__

    what = ("Parameters (every weight but BatchNorm's moving statistics) and multiply-accumulates (MACs) per image "
            "at the input size shown")
    if convention is not None:
        what += f"; {convention_header(convention)}: {convention.summary}, of {PARTS[part]}"
    return f"{what}. Counted by kbench {__version__}."


def _sizes_line(record):
    """torchinfo's memory estimate (``kbench.counting.sizes``), in MB of 10^6 bytes as it prints it."""
    mb = {key: record[key] / 1e6 for key in SIZE_COLUMNS}
    return (f"\nsizes per image (torchinfo's estimate, MB): input {mb['input_bytes']:.2f}, forward/backward pass "
            f"{mb['forward_backward_bytes']:.2f}, params {mb['params_bytes']:.2f}, "
            f"estimated total {mb['estimated_total_bytes']:.2f}\n")
