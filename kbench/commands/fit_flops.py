"""``kbench fit-flops``: MACs at several input sizes, fitted as a*h*w + b*(h+w) + c.

For the saliency networks of the FLOPs notes the fit is printed next to the notes' stated and
the audit's corrected coefficients, with a second fit in the notes' convention (kbench MACs +
pooling, element-wise, upsampling, BN and full-kernel transposed-conv terms). For any other
model those columns are blank; for a plain CNN b and c come out near zero.
"""

from __future__ import annotations

import json

from kbench.commands._common import add_output_arguments, check_out, parse_set, write
from kbench.common.validate import check_variant

NAME = "fit-flops"
HELP = "profile a model at several input sizes and fit MACs(h, w) = a*h*w + b*(h+w) + c"


def add_arguments(parser):
    parser.add_argument("model", help="a registered model name")
    parser.add_argument("--sizes", required=True,
                        help="comma-separated input sizes, N (square) or HxW, at least 3 distinct, "
                             "e.g. 224,256,288,320 or 224,256x320,288")
    parser.add_argument("--counter", choices=("profile", "analytic"), default="profile",
                        help="MAC counter: the TF profiler (default) or kbench's analytic counter")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="builder option (repeatable)")
    add_output_arguments(parser, formats=("table", "json"))


def run(args) -> int:
    from kbench.counting.fit import fit_requests, format_table, resolve_sizes

    # Every size resolved (and validated), and --out checked, before anything is built.
    check_out(args)
    requests = resolve_sizes(args.model, args.sizes, variant=parse_set(getattr(args, "set", None)))
    for request in requests:
        check_variant(request)
    result = fit_requests(requests, counter=args.counter)
    if args.format == "json":
        text = json.dumps(result, indent=2, default=float) + "\n"
    else:
        text = format_table(result) + "\n"
    write(text, args)
    return 0
