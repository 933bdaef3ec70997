"""``kbench profile``: parameters, TF-profiler FLOPs, MACs and uncounted ops of models.

Outputs: ``--format table`` (default; 25.56M / 4.09G, units in the headers), ``markdown`` and
``latex`` for people; ``csv`` and ``json`` with the raw integers. CSV: one row per model
(``PROFILE_COLUMNS``), or with ``--per-layer`` one row per layer and model
(``PER_LAYER_CSV_COLUMNS``). JSON: always one object ``{"environment": {...}, "models": [...]}``,
each model a profile record (the README's "CSV reports") plus the CSV's fields (num_classes, variant, status,
reported figures with their convention and input size).
"""

from __future__ import annotations

import json
import sys

from kbench.common import env, outputs
from kbench.models import selectors
from kbench.common import validate as check
from kbench.commands._common import add_output_arguments, format_table, parse_input_size, parse_set, write
from kbench.common.validate import check_variant
from kbench.common.csvio import ROW_CHECK_COLUMN, RowWriter, read_rows, to_csv_text
from kbench.errors import UsageError
from kbench.common.humanize import human_count, model_label

NAME = "profile"
HELP = "count parameters, FLOPs (TF profiler) and MACs of a model"

PROFILE_COLUMNS = (
    "run_id", "timestamp", "model", "family", "input_h", "input_w", "input_c", "variant", "status", "error",
    "params_total", "params_trainable", "params_non_trainable", "macs", "flops_tf", "flops_tf_per_2macs",
    "flops_tf_dilation_padding", "uncounted_ops", "mem_access", "reported_params", "reported_macs", "reported_source", "profile_s",
    "num_classes", "reported_convention", "reported_input_size", "activations", "convention", "part", "convention_flops",
) + env.ENV_COLUMNS + (ROW_CHECK_COLUMN,)  # last: filled by the CSV writer, a torn row fails it
LAYER_COLUMNS = ("name", "type", "input_shape", "output_shape", "params", "params_pct", "macs", "macs_pct",
                 "flops_tf", "mem_access", "activations", "uncounted_ops")
PER_LAYER_CSV_COLUMNS = ("model", "input_h", "input_w", "variant", "num_classes") + LAYER_COLUMNS + ("convention_flops",
                                                                                       ROW_CHECK_COLUMN)


def add_arguments(parser):
    parser.add_argument("model", metavar="MODELS", help="model selector: names, 'resnet*', family:F, all, @FILE, PATH.keras or "
                        "package.module:factory, comma-separated (README, 'Model selectors')")
    parser.add_argument("--input-size", help="H or H,W (default: the model's default input)")
    parser.add_argument("--num-classes", type=int, help="classifier outputs (default: the model's)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="builder option (repeatable)")
    parser.add_argument("--per-layer", action="store_true",
                        help="add a per-Keras-layer table (with --format csv: per-layer rows instead of the summary)")
    parser.add_argument("--depth", help="with --per-layer: fold nested models deeper than N levels into one row each")
    parser.add_argument("--convention", metavar="NAME",
                        help="add convention_flops counted under NAME (see 'kbench conventions')")
    parser.add_argument("--part", metavar="NAME",
                        help="with --convention: the part counted: whole (default), features (no classifier head), "
                             "backbone (no global pooling, no head)")
    parser.add_argument("--resume", action="store_true",
                        help="with --format csv --out: append, skipping models already in the file")
    add_output_arguments(parser)


def _flat_row(record, request, run_id, environment, seconds):
    h, w, c = record["input_shape"]
    reported = request.spec.primary_reported
    return {
        "run_id": run_id, "timestamp": env.timestamp(), "model": request.name, "family": request.family,
        "input_h": h, "input_w": w, "input_c": c, "variant": request.variant_text,
        "status": "ok", "error": "",
        "params_total": record["params_total"], "params_trainable": record["params_trainable"],
        "params_non_trainable": record["params_non_trainable"], "macs": record["macs"],
        "flops_tf": record["flops_tf"],
        "flops_tf_per_2macs": round(record["flops_tf"] / (2 * record["macs"]), 6) if record["macs"] else "",
        "uncounted_ops": ";".join(f"{k}:{v}" for k, v in record["uncounted_ops"].items()),
        "mem_access": record["mem_access"], "activations": record["activations"],
        "convention": record.get("convention", ""), "part": record.get("part", ""),
        "convention_flops": record.get("convention_flops", ""),
        "flops_tf_dilation_padding": record["flops_tf_dilation_padding"],
        "reported_params": reported.params if reported else "", "reported_macs": reported.macs if reported else "",
        "reported_source": reported.source if reported else "", "profile_s": round(seconds, 3),
        **_reported_context(request),
        **environment,
    }


def _error_row(request, exc, run_id, environment):
    h, w, c = request.input_shape
    return {"run_id": run_id, "timestamp": env.timestamp(), "model": request.name, "family": request.family,
            "input_h": h, "input_w": w, "input_c": c, "status": "error",
            "error": " ".join(f"{type(exc).__name__}: {exc}".split())[:500], "num_classes": _classes(request),
            **environment}


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


def _with_shares(record, depth):
    """The record's per-layer rows folded to ``depth``, each with its share of params and MACs (%)."""
    from kbench.counting.profiling import per_layer_at_depth

    rows = per_layer_at_depth(record["per_layer"], depth)
    for row in rows:
        row["params_pct"] = round(100 * row["params"] / record["params_total"], 2) if record["params_total"] else 0.0
        row["macs_pct"] = round(100 * row["macs"] / record["macs"], 2) if record["macs"] else 0.0
    return rows


def _per_layer_totals(record):
    return {"name": "total", "params": record["params_total"], "params_pct": 100.0, "macs": record["macs"],
            "macs_pct": 100.0, "flops_tf": record["flops_tf"], "mem_access": record["mem_access"],
            "activations": record.get("activations"), "convention_flops": record.get("convention_flops"),
            "uncounted_ops": record["uncounted_ops"]}


def _per_layer_csv_rows(record, request):
    h, w, _ = request.input_shape
    context = {"model": request.name, "input_h": h, "input_w": w, "variant": request.variant_text,
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
    import time

    from kbench.counting.profiling import profile, require_tensorflow_backend

    # Resolve (and so validate) every request before measuring anything: bad input costs nothing.
    size = parse_input_size(args.input_size)
    variant = parse_set(args.set)
    requests = selectors.resolve_requests(args.model, size, args.num_classes, variant)
    for request in requests:
        check_variant(request)
    depth = check.integer(args.depth, "--depth", minimum=1) if args.depth is not None else None
    if depth is not None and not args.per_layer:
        raise UsageError("--depth folds the per-layer rows: it needs --per-layer")
    convention, part = _convention_and_part(args.convention, args.part)
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
    log_each = len(requests) > 1  # a long run says what it is doing, one line per model (stderr)
    entries, failures, written = [], 0, 0
    for index, request in enumerate(requests, 1):
        started = time.perf_counter()
        record = None
        try:
            record = profile(request, per_layer=args.per_layer, convention=convention, part=part)
        except UsageError:
            raise
        except Exception as exc:  # one failing model is a row with its status, not a dead run
            failures += 1
            row = _error_row(request, exc, run_id, environment)
            print(f"kbench: {request.name}: {row['error']}", file=sys.stderr)
        else:
            seconds = time.perf_counter() - started
            row = _flat_row(record, request, run_id, environment, seconds)
            if args.per_layer:
                record["per_layer"] = _with_shares(record, depth)
            if log_each:
                print(f"kbench: [{index}/{len(requests)}] {_label(request)}: {human_count(record['params_trainable'])} "
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
            text, written = _render_table(args.format, entries, args.per_layer), len(entries)
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
    h, w, _ = request.input_shape
    return (request.name, str(h), str(w), request.variant_text, str(_classes(request)))


def _row_key(row):
    return (row["model"], str(row["input_h"]), str(row["input_w"]), row.get("variant") or "",
            str(row.get("num_classes") or ""))


SUMMARY_TABLE_COLUMNS = ("model", "input_h", "input_w", "params_trainable", "params_total", "macs", "flops_tf",
                         "flops_tf_per_2macs", "mem_access", "activations", "uncounted_ops", "status")
CONVENTION_TABLE_COLUMNS = ("convention", "part", "convention_flops")
PER_LAYER_NOTE = ("MACs = multiply-accumulates; FLOPs = TF profiler float operations; memory access = "
                  "elements read + written; activations = conv/dense output elements; %: share of the model's total")


def _render_table(fmt, entries, per_layer):
    rows = [{**row, "model": _label(request)} for request, _, row in entries]
    columns = SUMMARY_TABLE_COLUMNS
    if any(record and record.get("convention") for _, record, _ in entries):
        columns = columns[:-2] + CONVENTION_TABLE_COLUMNS + columns[-2:]
    text = format_table(columns, rows, fmt)
    if per_layer:
        for request, record, _ in entries:
            if record is None:
                continue
            text += f"\n{_label(request)} per layer ({PER_LAYER_NOTE})\n\n"
            layer_columns = LAYER_COLUMNS + (("convention_flops",) if record.get("convention") else ())
            text += format_table(layer_columns, record["per_layer"], fmt, totals=_per_layer_totals(record))
    return text
