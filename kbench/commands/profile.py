"""``kbench profile``: parameters, TF-profiler FLOPs, MACs and uncounted ops of models."""

from __future__ import annotations

import json
import sys

from kbench import env, outputs, registry
from kbench.commands._common import add_format_arguments, emit, format_table, parse_input_size, parse_set
from kbench.validate import check_variant
from kbench.csvio import RowWriter, read_rows, to_csv_text
from kbench.errors import UsageError

NAME = "profile"
HELP = "count parameters, FLOPs (TF profiler) and MACs of a model"

PROFILE_COLUMNS = (
    "run_id", "timestamp", "model", "family", "input_h", "input_w", "input_c", "variant", "status", "error",
    "params_total", "params_trainable", "params_non_trainable", "macs", "flops_tf", "flops_tf_per_2macs",
    "flops_tf_dilation_padding", "uncounted_ops", "mem_access", "activations", "convention", "part", "convention_flops",
    "reported_params", "reported_macs", "reported_source", "profile_s",
) + env.ENV_COLUMNS
LAYER_COLUMNS = ("name", "type", "output_shape", "params", "macs", "flops_tf", "mem_access", "activations")


def add_arguments(parser):
    parser.add_argument("model", help="a model name, a comma-separated list, 'family:F' or 'all'")
    parser.add_argument("--input-size", help="H or H,W (default: the model's default input)")
    parser.add_argument("--num-classes", type=int, help="classifier outputs (default: the model's)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="builder option (repeatable)")
    parser.add_argument("--per-layer", action="store_true", help="add a per-Keras-layer table")
    parser.add_argument("--convention", metavar="NAME",
                        help="add convention_flops counted under NAME (see 'kbench conventions')")
    parser.add_argument("--part", metavar="NAME",
                        help="with --convention: the part counted: whole (default), features (no classifier head), "
                             "backbone (no global pooling, no head)")
    parser.add_argument("--resume", action="store_true",
                        help="with --format csv --out: append, skipping models already in the file")
    add_format_arguments(parser)


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
        **environment,
    }


def _error_row(request, exc, run_id, environment):
    h, w, c = request.input_shape
    return {"run_id": run_id, "timestamp": env.timestamp(), "model": request.name, "family": request.family,
            "input_h": h, "input_w": w, "input_c": c, "status": "error",
            "error": " ".join(f"{type(exc).__name__}: {exc}".split())[:500], **environment}


def run(args) -> int:
    import time

    from kbench.profiling import profile, require_tensorflow_backend

    # Resolve (and so validate) every request before measuring anything: bad input costs nothing.
    names = registry.resolve_models(args.model)
    size = parse_input_size(args.input_size)
    variant = parse_set(args.set)
    requests = [registry.resolve(name, size, args.num_classes, variant) for name in names]
    for request in requests:
        check_variant(request)
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
    writer = None
    if csv_out and not args.force:  # rows appended one by one: a killed run keeps what it measured
        writer = RowWriter(args.out, PROFILE_COLUMNS)
        done = {_row_key(r) for r in existing}
        requests = [r for r in requests if _request_key(r) not in done]
    records, rows, failures = [], [], 0
    for request in requests:
        started = time.perf_counter()
        try:
            record = profile(request, per_layer=args.per_layer, convention=convention, part=part)
        except UsageError:
            raise
        except Exception as exc:  # one failing model is a row with its status, not a dead run
            failures += 1
            row = _error_row(request, exc, run_id, environment)
            print(f"kbench: {request.name}: {row['error']}", file=sys.stderr)
        else:
            row = _flat_row(record, request, run_id, environment, time.perf_counter() - started)
            records.append(record)
        rows.append(row)
        if writer:
            writer.write(row)
    if writer is None:
        text = to_csv_text(PROFILE_COLUMNS, rows) if csv_out else _render(args.format, records, rows, args.per_layer)
        emit(text, args.out, force=args.force)
    return 1 if failures else 0


def _convention_and_part(name, part):
    """The ``kbench.conventions.Convention`` of ``--convention`` (None without it) and ``--part``."""
    from kbench.conventions import CONVENTIONS, PARTS
    from kbench.validate import one_of

    if name is None:
        if part is not None:
            raise UsageError("--part needs --convention NAME")
        return None, "whole"
    return CONVENTIONS[one_of(name, "--convention", list(CONVENTIONS))], one_of(part or "whole", "--part", list(PARTS))


def _request_key(request):
    """The CSV resume key of a request: the same fields ``_row_key`` reads from a written row."""
    h, w, _ = request.input_shape
    return (request.name, str(h), str(w), request.variant_text)


def _row_key(row):
    return (row["model"], str(row["input_h"]), str(row["input_w"]), row.get("variant") or "")


def _render(fmt, records, rows, per_layer):
    if fmt == "json":
        payload = records[0] if len(records) == 1 and len(rows) == 1 else records
        return json.dumps(payload, indent=2) + "\n"
    if fmt == "csv":
        if per_layer and len(records) == 1:
            columns = ("model",) + LAYER_COLUMNS + (("convention_flops",) if "convention" in records[0] else ())
            return to_csv_text(columns, [{"model": records[0]["model"], **r} for r in records[0]["per_layer"]])
        return to_csv_text(PROFILE_COLUMNS, rows)
    columns = ("model", "input_h", "input_w", "params_trainable", "params_total", "macs", "flops_tf",
               "flops_tf_per_2macs", "mem_access", "activations", "uncounted_ops", "status")
    if any(record.get("convention") for record in records):
        columns = columns[:-2] + ("convention", "part", "convention_flops") + columns[-2:]
    text = format_table(columns, rows)
    if per_layer:
        for record in records:
            text += f"\n{record['model']} per layer (macs = multiply-accumulates; flops_tf = TF profiler float ops; mem_access = elements read + written)\n"
            text += format_table(LAYER_COLUMNS + (("convention_flops",) if "convention" in record else ()),
                                 record["per_layer"])
    return text
