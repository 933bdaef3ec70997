"""``kbench overhead``: the sweep's timed loop vs a minimal loop over the same compiled step.

Runs in this process on the backend ``KERAS_BACKEND`` names and prints one JSON object on
standard output (``kbench.running.timing.overhead_check``): first the loops' own per-step cost
measured over a no-op step (the headline), then the paired ratio harness/minimal on the real step
with its bootstrap interval and a verdict, then both loops' median samples/s.
"""

from __future__ import annotations

import argparse
import json
import sys

from kbench.common import validate as check
from kbench.errors import UsageError
from kbench.running.timing import MODES, OVERHEAD_PAIRS, PRECISIONS

NAME = "overhead"
HELP = "harness-overhead check: the sweep's timed loop vs a minimal loop over the same compiled step (JSON)"


def add_arguments(parser):
    parser.allow_abbrev = False
    parser.add_argument("--model", default="resnet18", help="registered model (default: %(default)s)")
    parser.add_argument("--input-size", default="64", help="H or H,W (default: %(default)s)")
    parser.add_argument("--batch-size", default=8, help="(default: %(default)s)")
    parser.add_argument("--mode", choices=MODES, default="infer")
    parser.add_argument("--precision", choices=PRECISIONS, default="float32")
    parser.add_argument("--jit", action=argparse.BooleanOptionalAction, default=None,
                        help="compile with XLA / jax.jit (default: Keras' default for the backend)")
    parser.add_argument("--warmup", default=5, help="untimed steps first (default: %(default)s)")
    parser.add_argument("--iters", default=30, help="steps per loop (default: %(default)s)")
    parser.add_argument("--repeats", default="auto",
                        help="interleaved pairs of loops; auto: ten at a time until the ratio's interval is within "
                             "the tolerance, at most %d (default: %%(default)s)" % OVERHEAD_PAIRS[1])
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="builder option (repeatable)")


def run(args) -> int:
    from kbench.running import backends
    from kbench.models import registry
    from kbench.common.quiet import quiet_import
    from kbench.running.timing import overhead_check

    batch_size, iters, warmup = (check.integer(value, what, minimum=lowest) for what, value, lowest in (
        ("--batch-size", args.batch_size, 1), ("--iters", args.iters, 1), ("--warmup", args.warmup, 0)))
    repeats = None if args.repeats == "auto" else _repeats(args.repeats)
    request = registry.resolve(args.model, check.input_size(args.input_size), variant=check.parse_set(args.set))
    check.check_variant(request)
    quiet_import("keras")
    backend = backends.active()
    jit = args.jit if args.jit is not None else backend.default_jit()
    if jit and not backend.supports_jit:
        raise UsageError(f"--jit on the {backend.name} backend: {backend.jit_unsupported_reason}")
    cfg = {"request": request.to_payload(), "batch_size": batch_size, "mode": args.mode,
           "precision": args.precision, "jit": jit, "warmup": warmup, "iters": iters}
    result = overhead_check(cfg, repeats=repeats)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


def _repeats(text: str) -> int:
    try:
        return check.integer(text, "--repeats", minimum=1)
    except UsageError:
        raise UsageError(f"--repeats {text!r} must be auto or an integer >= 1") from None
