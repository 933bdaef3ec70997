"""Every bad input is a clean exit 2: one line on stderr, no traceback, no file changed or created.

A table of bad command lines over every command, run in-process through ``kbench.cli.main``
(plus a few in a subprocess). Each case runs in its own directory (also the working directory,
so a default output such as ``results/...`` would show up) holding files a case may name:
their bytes, modes and kinds are compared before and after, and nothing new may appear.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kbench.cli import main
from kbench.common.csvio import ROW_CHECK_COLUMN, row_check
from kbench.results.schema import SWEEP_COLUMNS

SWEEP = ["sweep", "--models", "lenet5", "--input-size", "32", "--batch-sizes", "1", "--modes", "infer", "--no-jit",
         "--warmup", "0", "--iters", "1", "--no-progress", "--profile-cache", "{tmp}/pc", "--out", "{tmp}/new.csv"]


def _sweep(*extra, out=None):
    argv = list(SWEEP)
    if out is not None:
        argv[-1] = out
    return argv + list(extra)


def _row(**values):
    row = {c: "" for c in SWEEP_COLUMNS}
    row.update({"run_id": "r1", "model": "lenet5", "family": "lenet", "input_h": "32", "input_w": "32",
                "batch_size": "1", "mode": "infer", "backend": "tensorflow", "precision": "float32", "jit": "false",
                "status": "ok", "samples_per_s": "12.5"})
    row.update(values)
    return ",".join(row[c] for c in SWEEP_COLUMNS)


def _damaged_row():
    """A row whose row_crc32 was computed before one of its values changed (12.5 -> 125)."""
    fields = _row().split(",")
    fields[-1] = row_check(fields[:-1])
    fields[SWEEP_COLUMNS.index("samples_per_s")] = "125"
    return ",".join(fields)


# Rows that no reader accepts, so no writer may accept them either (merge, sweep --resume):
# name -> (the row's values, what the one-line error names).
BAD_ROWS = {
    "throughput-nan": ({"samples_per_s": "nan"}, "samples_per_s 'nan'"),
    "throughput-inf": ({"samples_per_s": "inf"}, "samples_per_s 'inf'"),
    "throughput-overflow": ({"samples_per_s": "1e309"}, "samples_per_s '1e309'"),
    "throughput-negative": ({"samples_per_s": "-5"}, "samples_per_s '-5'"),
    "throughput-zero": ({"samples_per_s": "0"}, "samples_per_s '0'"),
    "throughput-empty": ({"samples_per_s": ""}, "samples_per_s ''"),
    "throughput-word": ({"samples_per_s": "fast"}, "samples_per_s 'fast'"),
    "error-row-throughput-word": ({"status": "error", "samples_per_s": "fast"}, "samples_per_s 'fast'"),
    "rounds-word": ({"rounds": "3", "samples_per_s_rounds": "1;x;3"}, "samples_per_s_rounds '1;x;3'"),
    "rounds-negative": ({"rounds": "2", "samples_per_s_rounds": "1;-2"}, "samples_per_s_rounds '1;-2'"),
    "rounds-count": ({"rounds": "2", "samples_per_s_rounds": "1;2;3"}, "rounds '2' but 3 values"),
    "oom-batch-superscript": ({"status": "oom", "samples_per_s": "", "batch_size": "\u00b2"}, "batch_size '\u00b2'"),
    "input-superscript": ({"input_h": "\u00b2"}, "input_h '\u00b2'"),
    "timestamp-word": ({"timestamp": "yesterday"}, "timestamp 'yesterday'"),
    "model-empty": ({"model": ""}, "empty model"),
}


def _benchmark(**changes):
    bench = {"name": "test_block", "group": "blocks",
             "stats": {"mean": 0.01, "median": 0.01, "stddev": 0.001, "min": 0.009, "rounds": 3, "iterations": 1,
                       "data": [0.009, 0.01, 0.011]},
             "extra_info": {"batch_size": 8, "mode": "infer", "input_shape": [32, 32, 3]}}
    top = {"machine_info": {"node": "h", "cpu": {"brand_raw": "x"}}, "commit_info": {"id": "abc"},
           "datetime": "2026-11-22T10:00:00", "benchmarks": [bench]}
    for path, value in changes.items():
        target, *keys = path.split(".")
        holder = top if target == "top" else bench
        for key in keys[:-1]:
            holder = holder[key]
        if value is _DELETE:
            del holder[keys[-1]]
        else:
            holder[keys[-1]] = value
    return top


_DELETE = object()

HEADER = ",".join(SWEEP_COLUMNS)
FILES = {
    "existing.txt": b"keep me\n",
    "sweep.csv": (HEADER + "\n" + _row() + "\n").encode(),
    "sweep-2026-12-01.csv": (HEADER + "\n" + _row(samples_per_s="10", host="h") + "\n").encode(),
    "latin1.csv": (HEADER + "\n" + _row(host="caf\xe9") + "\n").encode("latin-1"),
    "short.csv": (HEADER + "\n" + _row() + "\n" + ",".join(["x"] * 10) + "\n").encode(),
    "other.csv": b"model,batch\nlenet5,1\n",
    "headeronly.csv": (HEADER + "\n").encode(),
    "badstatus.csv": (HEADER + "\n" + _row(status="great") + "\n").encode(),
    "latin1.toml": "[sweep]\nmodels = ['lenet5'] # caf\xe9\n".encode("latin-1"),
    "set5.toml": b"[sweep]\nmodels = ['lenet5']\nset = 5\n",
    "sweep3.toml": b"sweep = 3\n",
    "ten.toml": b"[sweep]\nmodels = ['lenet5']\nnum_classes = 'ten'\n",
    "warmup.toml": b"[sweep]\nmodels = ['lenet5']\nwarmup = 2.5\n",
    "batches.toml": b"[sweep]\nmodels = ['lenet5']\nbatch_sizes = [1.5]\n",
    "jit.toml": b"[sweep]\nmodels = ['lenet5']\njit = 'maybe'\n",
    "models5.toml": b"[sweep]\nmodels = 5\n",
    "unknown.toml": b"[sweep]\nmodels = ['lenet5']\nbogus = 1\n",
    "broken.toml": b"[sweep\nmodels = \n",
    "precision.toml": b"[sweep]\nmodels = ['lenet5']\nprecision = [1]\n",
    "timeout.toml": b"[sweep]\nmodels = ['lenet5']\ntimeout = nan\n",
    "size.toml": b"[sweep]\nmodels = ['lenet5']\ninput_size = [32, 'a']\n",
    "setnan.toml": b"[sweep]\nmodels = ['resnet18']\ninput_size = 32\nset = {groups = nan}\n",
    "setabc.toml": b"[sweep]\nmodels = ['resnet18']\ninput_size = 32\nset = {groups = 'abc'}\n",
    "budget.toml": b"[sweep]\nmodels = ['lenet5']\ntime_budget = inf\n",
    "rounds0.toml": b"[sweep]\nmodels = ['lenet5']\nrounds = 0\n",
    "rounds_text.toml": b"[sweep]\nmodels = ['lenet5']\nrounds = '5'\n",
    "bench.json": json.dumps(_benchmark()).encode(),
    "notjson.json": b"{not json",
    "latin1.json": '{"benchmarks": [], "datetime": "caf\xe9"}'.encode("latin-1"),
    "data_strings.json": json.dumps(_benchmark(**{"b.stats.data": ["a", "b"]})).encode(),
    "batch_string.json": json.dumps(_benchmark(**{"b.extra_info.batch_size": "8"})).encode(),
    "shape_int.json": json.dumps(_benchmark(**{"b.extra_info.input_shape": 32})).encode(),
    "extra_list.json": json.dumps(_benchmark(**{"b.extra_info": [1, 2]})).encode(),
    "machine_string.json": json.dumps(_benchmark(**{"top.machine_info": "linux"})).encode(),
    "no_mean.json": json.dumps(_benchmark(**{"b.stats.mean": _DELETE})).encode(),
    "mean_nan.json": json.dumps(_benchmark(**{"b.stats.mean": float("nan")})).encode(),
    "mean_string.json": json.dumps(_benchmark(**{"b.stats.mean": "fast"})).encode(),
    "benchmarks_dict.json": json.dumps({"benchmarks": {"a": 1}}).encode(),
    "commit_list.json": json.dumps(_benchmark(**{"top.commit_info": ["abc"]})).encode(),
    "rounds_zero.json": json.dumps(_benchmark(**{"b.stats.rounds": 0})).encode(),
    "top_list.json": b"[1, 2, 3]",
    "data_dict.json": json.dumps(_benchmark(**{"b.stats.data": {"a": 1}})).encode(),
    "name_list.json": json.dumps(_benchmark(**{"b.name": ["x"]})).encode(),
    "nomodels.txt": b"# no model here\n\n",
    "dupkey.csv": (HEADER + "\n" + _row() + "\n" + _row(samples_per_s="13") + "\n").encode(),
    "damaged.csv": (HEADER + "\n" + _damaged_row() + "\n").encode(),
    "older.csv": (",".join(SWEEP_COLUMNS[:-1]) + "\n" + ",".join(_row().split(",")[:-1]) + "\n").encode(),
    "batches_empty_item.toml": b"[sweep]\nmodels = ['lenet5']\nbatch_sizes = '1,,2'\n",
    **{f"bad-{name}.csv": (HEADER + "\n" + _row(**values) + "\n").encode() for name, (values, _) in BAD_ROWS.items()},
}

CASES = [
    # ---- sweep: numbers
    ("sweep-num-classes-0", _sweep("--num-classes", "0"), "num"),
    ("sweep-num-classes-negative", _sweep("--num-classes", "-3"), "num"),
    ("sweep-num-classes-word", _sweep("--num-classes", "ten"), "ten"),
    ("sweep-num-classes-float", _sweep("--num-classes", "2.5"), "2.5"),
    ("sweep-timeout-inf", _sweep("--timeout", "inf"), "--timeout"),
    ("sweep-timeout-nan", _sweep("--timeout", "nan"), "--timeout"),
    ("sweep-timeout-zero", _sweep("--timeout", "0"), "--timeout"),
    ("sweep-timeout-negative", _sweep("--timeout", "-1"), "--timeout"),
    ("sweep-timeout-word", _sweep("--timeout", "abc"), "--timeout"),
    ("sweep-budget-nan", _sweep("--time-budget", "nan"), "--time-budget"),
    ("sweep-budget-inf", _sweep("--time-budget", "inf"), "--time-budget"),
    ("sweep-budget-zero", _sweep("--time-budget", "0"), "--time-budget"),
    ("sweep-peak-nan", _sweep("--peak-tflops", "nan"), "--peak-tflops"),
    ("sweep-peak-negative", _sweep("--peak-tflops", "-1"), "--peak-tflops"),
    ("sweep-peak-inf", _sweep("--peak-tflops", "inf"), "--peak-tflops"),
    ("sweep-warmup-negative", _sweep("--warmup", "-1"), "--warmup"),
    ("sweep-warmup-float", _sweep("--warmup", "1.5"), "--warmup"),
    ("sweep-iters-zero", _sweep("--iters", "0"), "--iters"),
    ("sweep-iters-word", _sweep("--iters", "x"), "--iters"),
    ("sweep-rounds-zero", _sweep("--rounds", "0"), "--rounds"),
    ("sweep-rounds-negative", _sweep("--rounds", "-2"), "--rounds"),
    ("sweep-rounds-word", _sweep("--rounds", "five"), "--rounds"),
    ("sweep-rounds-float", _sweep("--rounds", "2.5"), "--rounds"),
    ("config-rounds-zero", ["sweep", "--config", "{tmp}/rounds0.toml", "--out", "{tmp}/new.csv"], "rounds"),
    ("config-rounds-text", ["sweep", "--config", "{tmp}/rounds_text.toml", "--out", "{tmp}/new.csv"], "rounds"),
    ("sweep-batch-zero", _sweep("--batch-sizes", "0"), "positive integers"),
    ("sweep-batch-word", _sweep("--batch-sizes", "1,x"), "positive integers"),
    ("sweep-batch-empty", _sweep("--batch-sizes", ""), "positive integers"),
    ("sweep-batch-float", _sweep("--batch-sizes", "1.5"), "positive integers"),
    # ---- sweep: --set
    ("sweep-set-unclosed-list", _sweep("--set", "groups=[1,"), "cannot parse --set groups=[1,"),
    ("sweep-set-bare-word-for-int", _sweep("--set", "groups=abc", "--models", "resnet18"), "groups"),
    ("sweep-set-unclosed-dict", _sweep("--set", "plugins={"), "cannot parse --set plugins={"),
    ("sweep-set-no-key", _sweep("--set", "=3"), "KEY=VALUE"),
    ("sweep-set-no-equals", _sweep("--set", "noequals"), "KEY=VALUE"),
    ("sweep-set-bad-key", _sweep("--set", "1x=2"), "KEY=VALUE"),
    ("sweep-set-twice", _sweep("--set", "activation=relu", "--set", "activation=tanh"), "twice"),
    ("sweep-set-dotted", _sweep("--set", "activation=1.2.3"), "cannot parse"),
    ("sweep-set-unknown-key", _sweep("--set", "widht=2"), "widht"),
    ("sweep-set-nan", _sweep("--set", "activation=NaN"), "nan"),
    # ---- sweep: choices, models, sizes
    ("sweep-abbrev-batch-size", _sweep("--batch-size", "1"), "--batch-size"),
    ("sweep-abbrev-mode", _sweep("--mode", "infer"), "--mode"),
    ("sweep-abbrev-prec", _sweep("--prec", "float32"), "--prec"),
    ("sweep-precision", _sweep("--precision", "float64"), "float64"),
    ("sweep-backend", _sweep("--backend", "mxnet"), "mxnet"),
    ("sweep-mode", _sweep("--modes", "eval"), "eval"),
    ("sweep-input-too-small", _sweep("--input-size", "8"), "too small"),
    ("sweep-input-zero", _sweep("--input-size", "0"), "--input-size"),
    ("sweep-input-four", _sweep("--input-size", "32,32,3,1"), "--input-size"),
    ("sweep-input-superscript", _sweep("--input-size", "\u00b2"), "--input-size"),
    ("sweep-input-word", _sweep("--input-size", "abc"), "--input-size"),
    ("sweep-unknown-model", _sweep("--models", "no_such_net"), "unknown model"),
    ("sweep-unknown-family", ["sweep", "--family", "nosuch", "--out", "{tmp}/new.csv"], "nosuch"),
    ("sweep-models-twice", ["sweep", "lenet5", "--models", "lenet5", "--out", "{tmp}/new.csv"], "once"),
    ("sweep-no-models", ["sweep", "--out", "{tmp}/new.csv"], "name the models"),
    ("sweep-jit-twice", _sweep("--jit"), "--jit"),
    ("sweep-retry-without-resume", _sweep("--retry-failed"), "--resume"),
    ("sweep-profile-cache-file", _sweep("--profile-cache", "{tmp}/existing.txt"), "not a directory"),
    # ---- sweep: --out
    ("sweep-out-exists", _sweep(out="{tmp}/existing.txt"), "--resume"),
    ("sweep-out-directory", _sweep(out="{tmp}/adir"), "directory"),
    ("sweep-out-parent-file", _sweep(out="{tmp}/existing.txt/x.csv"), "not a directory"),
    ("sweep-out-proc", _sweep(out="/proc/self/kbench.csv"), "/proc"),
    ("sweep-out-dev-null", _sweep(out="/dev/null"), "character device"),
    ("sweep-out-fifo", _sweep(out="{tmp}/fifo"), "fifo"),
    ("sweep-out-symlink-to-existing", _sweep(out="{tmp}/link.txt"), "--resume"),
    ("sweep-resume-dev-null", _sweep("--resume", out="/dev/null"), "character device"),
    ("sweep-resume-directory", _sweep("--resume", out="{tmp}/adir"), "directory"),
    ("sweep-resume-latin1", _sweep("--resume", out="{tmp}/latin1.csv"), "UTF-8"),
    ("sweep-resume-short-row", _sweep("--resume", out="{tmp}/short.csv"), "has 10 fields, the header has"),
    ("sweep-resume-other-csv", _sweep("--resume", out="{tmp}/other.csv"), "not a kbench sweep CSV"),
    ("sweep-resume-bad-status", _sweep("--resume", out="{tmp}/badstatus.csv"), "great"),
    ("sweep-resume-text-file", _sweep("--resume", out="{tmp}/existing.txt"), "not a kbench sweep CSV"),
    # ---- sweep: --config
    ("config-latin1", ["sweep", "--config", "{tmp}/latin1.toml", "--out", "{tmp}/new.csv"], "UTF-8"),
    ("config-set-int", ["sweep", "--config", "{tmp}/set5.toml", "--out", "{tmp}/new.csv"], "'set'"),
    ("config-sweep-int", ["sweep", "--config", "{tmp}/sweep3.toml", "--out", "{tmp}/new.csv"], "'sweep'"),
    ("config-num-classes-word", ["sweep", "--config", "{tmp}/ten.toml", "--out", "{tmp}/new.csv"], "num_classes"),
    ("config-warmup-float", ["sweep", "--config", "{tmp}/warmup.toml", "--out", "{tmp}/new.csv"], "warmup"),
    ("config-batch-float", ["sweep", "--config", "{tmp}/batches.toml", "--out", "{tmp}/new.csv"], "positive integers"),
    ("config-jit-word", ["sweep", "--config", "{tmp}/jit.toml", "--out", "{tmp}/new.csv"], "maybe"),
    ("config-models-int", ["sweep", "--config", "{tmp}/models5.toml", "--out", "{tmp}/new.csv"], "models"),
    ("config-unknown-key", ["sweep", "--config", "{tmp}/unknown.toml", "--out", "{tmp}/new.csv"], "bogus"),
    ("config-malformed", ["sweep", "--config", "{tmp}/broken.toml", "--out", "{tmp}/new.csv"], "malformed TOML"),
    ("config-missing", ["sweep", "--config", "{tmp}/missing.toml", "--out", "{tmp}/new.csv"], "cannot read"),
    ("config-directory", ["sweep", "--config", "{tmp}/adir", "--out", "{tmp}/new.csv"], "cannot read"),
    ("config-precision-int", ["sweep", "--config", "{tmp}/precision.toml", "--out", "{tmp}/new.csv"], "precision"),
    ("config-timeout-nan", ["sweep", "--config", "{tmp}/timeout.toml", "--out", "{tmp}/new.csv"], "timeout"),
    ("config-size-word", ["sweep", "--config", "{tmp}/size.toml", "--out", "{tmp}/new.csv"], "input_size"),
    ("config-set-nan", ["sweep", "--config", "{tmp}/setnan.toml", "--out", "{tmp}/new.csv"], "groups"),
    ("config-set-string-for-int", ["sweep", "--config", "{tmp}/setabc.toml", "--out", "{tmp}/new.csv"], "groups"),
    ("config-budget-inf", ["sweep", "--config", "{tmp}/budget.toml", "--out", "{tmp}/new.csv"], "time_budget"),
    # ---- convert-benchmarks
    ("convert-missing", ["convert-benchmarks", "{tmp}/missing.json", "--out", "{tmp}/b.csv"], "cannot read"),
    ("convert-not-json", ["convert-benchmarks", "{tmp}/notjson.json", "--out", "{tmp}/b.csv"], "malformed JSON"),
    ("convert-latin1", ["convert-benchmarks", "{tmp}/latin1.json", "--out", "{tmp}/b.csv"], "malformed JSON"),
    ("convert-data-strings", ["convert-benchmarks", "{tmp}/data_strings.json", "--out", "{tmp}/b.csv"], "stats.data"),
    ("convert-batch-string", ["convert-benchmarks", "{tmp}/batch_string.json", "--out", "{tmp}/b.csv"], "batch_size"),
    ("convert-shape-int", ["convert-benchmarks", "{tmp}/shape_int.json", "--out", "{tmp}/b.csv"], "input_shape"),
    ("convert-extra-list", ["convert-benchmarks", "{tmp}/extra_list.json", "--out", "{tmp}/b.csv"], "extra_info"),
    ("convert-machine-string", ["convert-benchmarks", "{tmp}/machine_string.json", "--out", "{tmp}/b.csv"],
     "machine_info"),
    ("convert-no-mean", ["convert-benchmarks", "{tmp}/no_mean.json", "--out", "{tmp}/b.csv"], "mean"),
    ("convert-mean-nan", ["convert-benchmarks", "{tmp}/mean_nan.json", "--out", "{tmp}/b.csv"], "mean"),
    ("convert-mean-string", ["convert-benchmarks", "{tmp}/mean_string.json", "--out", "{tmp}/b.csv"], "mean"),
    ("convert-benchmarks-dict", ["convert-benchmarks", "{tmp}/benchmarks_dict.json"], "benchmarks"),
    ("convert-commit-list", ["convert-benchmarks", "{tmp}/commit_list.json"], "commit_info"),
    ("convert-rounds-zero", ["convert-benchmarks", "{tmp}/rounds_zero.json"], "rounds"),
    ("convert-top-list", ["convert-benchmarks", "{tmp}/top_list.json"], "benchmarks"),
    ("convert-data-dict", ["convert-benchmarks", "{tmp}/data_dict.json"], "stats.data"),
    ("convert-name-list", ["convert-benchmarks", "{tmp}/name_list.json"], "name"),
    ("convert-input-is-directory", ["convert-benchmarks", "{tmp}/adir"], "cannot read"),
    ("convert-out-exists", ["convert-benchmarks", "{tmp}/bench.json", "--out", "{tmp}/sweep.csv"], "--force"),
    ("convert-out-directory", ["convert-benchmarks", "{tmp}/bench.json", "--out", "{tmp}/adir"], "directory"),
    ("convert-out-dev-null", ["convert-benchmarks", "{tmp}/bench.json", "--out", "/dev/null", "--force"],
     "character device"),
    ("convert-out-fifo", ["convert-benchmarks", "{tmp}/bench.json", "--out", "{tmp}/fifo", "--force"], "fifo"),
    ("convert-out-symlink", ["convert-benchmarks", "{tmp}/bench.json", "--out", "{tmp}/link.txt"], "--force"),
    ("convert-out-proc", ["convert-benchmarks", "{tmp}/bench.json", "--out", "/proc/self/b.csv"], "/proc"),
    ("convert-out-parent-file", ["convert-benchmarks", "{tmp}/bench.json", "--out", "{tmp}/existing.txt/b.csv"],
     "not a directory"),
    ("convert-out-is-input", ["convert-benchmarks", "{tmp}/bench.json", "--out", "{tmp}/bench.json", "--force"],
     "input file"),
    ("convert-abbrev-out", ["convert-benchmarks", "{tmp}/bench.json", "--ou", "{tmp}/b.csv"], "--ou"),
    ("convert-abbrev-force", ["convert-benchmarks", "{tmp}/bench.json", "--out", "{tmp}/sweep.csv", "--for"], "--for"),
    # ---- overhead
    ("overhead-batch-zero", ["overhead", "--model", "lenet5", "--batch-size", "0"], "--batch-size"),
    ("overhead-batch-word", ["overhead", "--model", "lenet5", "--batch-size", "x"], "--batch-size"),
    ("overhead-iters-zero", ["overhead", "--model", "lenet5", "--iters", "0"], "--iters"),
    ("overhead-repeats-negative", ["overhead", "--model", "lenet5", "--repeats", "-1"], "--repeats"),
    ("overhead-warmup-negative", ["overhead", "--model", "lenet5", "--warmup", "-1"], "--warmup"),
    ("overhead-input-zero", ["overhead", "--model", "lenet5", "--input-size", "0"], "--input-size"),
    ("overhead-unknown-model", ["overhead", "--model", "nosuch"], "unknown model"),
    ("overhead-set-unclosed", ["overhead", "--model", "resnet18", "--set", "groups=[1,"], "cannot parse"),
    ("overhead-set-bare-word", ["overhead", "--model", "resnet18", "--set", "groups=abc"], "groups"),
    ("overhead-abbrev", ["overhead", "--model", "lenet5", "--batch", "8"], "--batch"),
    ("overhead-mode", ["overhead", "--model", "lenet5", "--mode", "eval"], "eval"),
    # ---- the other commands (their own validation)
    ("profile-unknown-model", ["profile", "nosuch"], "unknown model"),
    ("profile-input-zero", ["profile", "lenet5", "--input-size", "0"], "--input-size"),
    ("profile-input-superscript", ["profile", "lenet5", "--input-size", "32x\u00b2"], "must be H, H,W or H,W,C"),
    ("profile-input-four", ["profile", "lenet5", "--input-size", "32,32,3,1"], "must be H, H,W or H,W,C"),
    ("profile-input-channels-zero", ["profile", "lenet5", "--input-size", "32x32x0"], "--input-size"),
    ("profile-input-huge", ["profile", "lenet5", "--input-size", "9" * 5000], "--input-size"),
    ("profile-columns-unknown", ["profile", "lenet5", "--columns", "model,flops"], "unknown column 'flops'"),
    ("profile-columns-csv", ["profile", "lenet5", "--columns", "model", "--format", "csv"], "--columns"),
    ("profile-group-by-bad-regex", ["profile", "lenet5", "--per-layer", "--group-by", "(stage"], "--group-by"),
    ("profile-group-by-and-depth", ["profile", "lenet5", "--per-layer", "--group-by", "x", "--depth", "1"],
     "pass one of them"),
    ("profile-group-by-without-per-layer", ["profile", "lenet5", "--group-by", "x"], "needs --per-layer"),
    ("profile-import-not-a-module", ["profile", "lenet5", "--import", "my-nets.py"], "--import"),
    ("profile-jobs-zero", ["profile", "lenet5", "--jobs", "0"], "--jobs 0 must be an integer >= 1"),
    ("profile-jobs-word", ["profile", "lenet5", "--jobs", "many"], "--jobs 'many' must be an integer"),
    ("profile-import-missing", ["profile", "lenet5", "--import", "no_such_module_kbench"], "cannot import"),
    ("profile-set-no-equals", ["profile", "lenet5", "--set", "noequals"], "KEY=VALUE"),
    ("profile-format", ["profile", "lenet5", "--format", "xml"], "xml"),
    ("profile-num-classes-word", ["profile", "lenet5", "--num-classes", "x"], "num-classes"),
    ("profile-set-unknown-key", ["profile", "lenet5", "--set", "widht=2"], "widht"),
    ("profile-convention-unknown", ["profile", "lenet5", "--convention", "fvcore"], "allowed: macs, tf, mmengine"),
    ("profile-part-unknown", ["profile", "lenet5", "--convention", "mmengine", "--part", "head"],
     "allowed: whole, features, backbone"),
    ("profile-part-without-convention", ["profile", "lenet5", "--part", "backbone"], "--part needs --convention"),
    ("conventions-format", ["conventions", "--format", "xml"], "xml"),
    ("reproduce-unknown-table", ["reproduce", "nosuch_table"], "unknown table 'nosuch_table'"),
    ("reproduce-all-and-table", ["reproduce", "all", "resnet_table"], "'all' cannot be combined"),
    ("reproduce-format", ["reproduce", "resnet_table", "--format", "xml"], "--format: invalid choice: 'xml' (choose from 'markdown', 'csv'"),
    ("reproduce-out-exists", ["reproduce", "resnet_table", "--out", "{tmp}/existing.txt"], "--force"),
    ("reproduce-out-directory", ["reproduce", "resnet_table", "--out", "{tmp}/adir", "--force"], "directory"),
    ("reproduce-list-with-table", ["reproduce", "--list", "resnet_table"], "--list takes no TABLE"),
    ("reproduce-speed-iters-zero", ["reproduce", "resnet_table", "--speed", "--speed-iters", "0"], "--speed-iters"),
    ("reproduce-speed-batch-word", ["reproduce", "resnet_table", "--speed", "--speed-batch-size", "x"], "--speed-batch-size"),
    ("conventions-out-exists", ["conventions", "--out", "{tmp}/existing.txt"], "--force"),
    ("list-unknown-family", ["list", "--family", "nosuch"], "nosuch"),
    ("list-format", ["list", "--format", "xml"], "xml"),
    ("fit-flops-no-sizes", ["fit-flops", "lenet5"], "--sizes"),
    ("fit-flops-unknown-model", ["fit-flops", "nosuch", "--sizes", "32,40,48"], "nosuch"),
    ("compare-missing", ["compare", "{tmp}/missing.csv", "{tmp}/missing2.csv"], "missing"),
    ("compare-threshold", ["compare", "{tmp}/sweep.csv", "{tmp}/sweep.csv", "--threshold", "abc"], "--threshold"),
    ("history-missing", ["history", "{tmp}/nosuchdir"], "nosuchdir"),
    ("history-min-points", ["history", "{tmp}", "--min-points", "0"], "--min-points"),
    ("report-missing", ["report", "{tmp}/nosuchdir"], "nosuchdir"),
    ("compare-out-exists", ["compare", "{tmp}/sweep.csv", "{tmp}/sweep.csv", "--out", "{tmp}/existing.txt"], "--force"),
    ("compare-out-dev-null", ["compare", "{tmp}/sweep.csv", "{tmp}/sweep.csv", "--out", "/dev/null", "--force"],
     "character device"),
    ("compare-out-symlink", ["compare", "{tmp}/sweep.csv", "{tmp}/sweep.csv", "--out", "{tmp}/link.txt"], "--force"),
    ("compare-out-is-input", ["compare", "{tmp}/sweep.csv", "{tmp}/other.csv", "--out", "{tmp}/sweep.csv", "--force"],
     "input"),
    ("compare-out-proc", ["compare", "{tmp}/sweep.csv", "{tmp}/sweep.csv", "--out", "/proc/self/c.txt"], "/proc"),
    ("compare-latin1", ["compare", "{tmp}/latin1.csv", "{tmp}/sweep.csv"], "latin1.csv"),
    ("compare-short-row", ["compare", "{tmp}/short.csv", "{tmp}/sweep.csv"], "short.csv"),
    ("compare-not-sweep", ["compare", "{tmp}/other.csv", "{tmp}/sweep.csv"], "other.csv"),
    ("compare-directory", ["compare", "{tmp}/adir", "{tmp}/sweep.csv"], "adir"),
    ("compare-abbrev", ["compare", "{tmp}/sweep.csv", "{tmp}/sweep.csv", "--thresh", "5%"], "--thresh"),
    ("compare-alpha-nan", ["compare", "{tmp}/sweep.csv", "{tmp}/sweep.csv", "--alpha", "nan"], "--alpha"),
    ("compare-format", ["compare", "{tmp}/sweep.csv", "{tmp}/sweep.csv", "--format", "xml"], "xml"),
    ("history-out-directory", ["history", "{tmp}", "--out", "{tmp}/adir"], "directory"),
    ("history-out-exists", ["history", "{tmp}", "--out", "{tmp}/existing.txt"], "--force"),
    ("history-noise-nan", ["history", "{tmp}", "--noise-factor", "nan"], "--noise-factor"),
    ("history-noise-inf", ["history", "{tmp}", "--noise-factor", "inf"], "--noise-factor"),
    ("history-abbrev", ["history", "{tmp}", "--min-point", "3"], "--min-point"),
    ("history-no-nights", ["history", "{tmp}/adir"], "adir"),
    ("history-min-change", ["history", "{tmp}", "--min-change", "abc"], "--min-change"),
    ("report-out-file", ["report", "{tmp}", "--out", "{tmp}/existing.txt"], "existing file"),
    ("report-out-proc", ["report", "{tmp}", "--out", "/proc/self/report"], "/proc"),
    ("report-out-parent-file", ["report", "{tmp}", "--out", "{tmp}/existing.txt/report"], "file"),
    ("report-out-non-empty", ["report", "{tmp}", "--out", "{tmp}/adir"], "non-empty"),
    ("report-threshold", ["report", "{tmp}", "--threshold", "150"], "--threshold"),
    ("report-abbrev", ["report", "{tmp}", "--forc"], "--forc"),
    ("report-no-nights", ["report", "{tmp}/adir", "--out", "{tmp}/new-report"], "adir"),
    ("nightly-missing", ["nightly", "{tmp}/sweep-2026-12-01T010000Z.csv"], "sweep-2026-12-01T010000Z.csv"),
    ("nightly-not-sweep", ["nightly", "{tmp}/other.csv"], "other.csv"),
    ("nightly-short-row", ["nightly", "{tmp}/short.csv"], "short.csv"),
    ("nightly-results-missing", ["nightly", "{tmp}/sweep-2026-12-01.csv", "--results", "{tmp}/nosuchdir"], "nosuchdir"),
    ("nightly-report-not-ours", ["nightly", "{tmp}/sweep-2026-12-01.csv", "--report", "{tmp}/adir"], "non-empty"),
    ("nightly-report-file", ["nightly", "{tmp}/sweep-2026-12-01.csv", "--report", "{tmp}/existing.txt"],
     "existing file"),
    ("nightly-report-proc", ["nightly", "{tmp}/sweep-2026-12-01.csv", "--report", "/proc/self/report"], "/proc"),
    ("nightly-threshold", ["nightly", "{tmp}/sweep-2026-12-01.csv", "--threshold", "abc"], "--threshold"),
    ("nightly-alpha", ["nightly", "{tmp}/sweep-2026-12-01.csv", "--alpha", "2"], "--alpha"),
    ("nightly-abbrev", ["nightly", "{tmp}/sweep-2026-12-01.csv", "--thresh", "5%"], "--thresh"),
    ("nightly-tag-path", ["nightly", "{tmp}/sweep-2026-12-01.csv", "--tag", "../../x"], "--tag"),
    ("nightly-confirm-budget", ["nightly", "{tmp}/sweep-2026-12-01.csv", "--confirm-budget", "-1"],
     "--confirm-budget"),
    ("history-tag-path", ["history", "{tmp}", "--tag", "a/b"], "--tag"),
    ("report-tag-empty", ["report", "{tmp}", "--tag", ""], "--tag"),
    ("compare-empty-base", ["compare", "{tmp}/headeronly.csv", "{tmp}/sweep.csv"], "no rows"),
    ("compare-empty-new", ["compare", "{tmp}/sweep.csv", "{tmp}/headeronly.csv"], "no rows"),
    ("unknown-command", ["frobnicate"], "frobnicate"),
    # ---- list / profile / fit-flops --out and the shared parsers
    ("list-out-exists", ["list", "--out", "{tmp}/existing.txt"], "--force"),
    ("list-out-symlink", ["list", "--out", "{tmp}/link.txt"], "--force"),
    ("list-out-dev-null", ["list", "--out", "/dev/null", "--force"], "character device"),
    ("list-out-dev-full", ["list", "--out", "/dev/full", "--force"], "character device"),
    ("list-out-fifo", ["list", "--out", "{tmp}/fifo", "--force"], "fifo"),
    ("list-out-directory", ["list", "--out", "{tmp}/adir", "--force"], "directory"),
    ("list-out-proc", ["list", "--out", "/proc/self/list.txt"], "/proc"),
    ("list-out-parent-file", ["list", "--out", "{tmp}/existing.txt/list.txt"], "not a directory"),
    ("list-abbrev", ["list", "--fam", "lenet"], "--fam"),
    ("top-level-abbrev", ["--vers", "list"], "--vers"),
    ("profile-out-exists", ["profile", "lenet5", "--out", "{tmp}/existing.txt"], "--force"),
    ("profile-csv-out-exists", ["profile", "lenet5", "--format", "csv", "--out", "{tmp}/sweep.csv"], "--resume"),
    ("profile-out-dev-full", ["profile", "lenet5", "--out", "/dev/full", "--force"], "character device"),
    ("profile-csv-resume-dev-null", ["profile", "lenet5", "--format", "csv", "--out", "/dev/null", "--resume"],
     "character device"),
    ("profile-out-directory", ["profile", "lenet5", "--format", "json", "--out", "{tmp}/adir"], "directory"),
    ("profile-resume-latin1", ["profile", "lenet5", "--format", "csv", "--out", "{tmp}/latin1.csv", "--resume"],
     "UTF-8"),
    ("profile-resume-short", ["profile", "lenet5", "--format", "csv", "--out", "{tmp}/short.csv", "--resume"],
     "has 10 fields"),
    ("profile-resume-and-force", ["profile", "lenet5", "--format", "csv", "--out", "{tmp}/sweep.csv", "--resume",
                                  "--force"], "--force"),
    ("profile-set-unclosed", ["profile", "lenet5", "--set", "activation=[1,"], "cannot parse --set activation=[1,"),
    ("profile-set-bare-word-for-int", ["profile", "resnet18", "--set", "groups=abc"], "groups"),
    ("profile-set-vgg-head", ["profile", "vgg16", "--input-size", "32", "--set", "head=max"], "head=max"),
    ("profile-num-classes-zero", ["profile", "lenet5", "--num-classes", "0"], "num_classes"),
    ("profile-abbrev", ["profile", "lenet5", "--per", "--format", "json"], "--per"),
    ("profile-depth-zero", ["profile", "lenet5", "--per-layer", "--depth", "0"], "--depth 0 must be an integer >= 1"),
    ("profile-depth-word", ["profile", "lenet5", "--per-layer", "--depth", "two"], "--depth 'two' must be an integer"),
    ("profile-depth-without-per-layer", ["profile", "lenet5", "--depth", "1"], "needs --per-layer"),
    ("profile-markdown-out-exists", ["profile", "lenet5", "--format", "markdown", "--out", "{tmp}/existing.txt"],
     "--force"),
    ("profile-latex-out-exists", ["profile", "lenet5", "--format", "latex", "--out", "{tmp}/existing.txt"], "--force"),
    ("profile-per-layer-resume-other-columns", ["profile", "lenet5", "--per-layer", "--format", "csv", "--out",
                                                "{tmp}/sweep.csv", "--resume"], "columns differ"),
    ("list-latex-out-exists", ["list", "--format", "latex", "--out", "{tmp}/existing.txt"], "--force"),
    ("fit-flops-out-exists", ["fit-flops", "lenet5", "--sizes", "32,40,48", "--out", "{tmp}/existing.txt"],
     "--force"),
    ("fit-flops-out-dev-null", ["fit-flops", "lenet5", "--sizes", "32,40,48", "--out", "/dev/null", "--force"],
     "character device"),
    ("fit-flops-set-unclosed", ["fit-flops", "resnet18", "--sizes", "32,40,48", "--set", "groups=[1,"],
     "cannot parse"),
    ("fit-flops-set-bare-word", ["fit-flops", "resnet18", "--sizes", "32,64,96", "--set", "groups=abc"], "groups"),
    ("fit-flops-abbrev", ["fit-flops", "lenet5", "--size", "32,40,48"], "--size"),
    # ---- model selectors (profile and sweep share kbench.models.selectors) and --config presets
    ("profile-glob-no-match", ["profile", "nomatch*"], "pattern 'nomatch*' matches no registered model"),
    ("profile-list-file-missing", ["profile", "@{tmp}/missing.txt"], "cannot read model list"),
    ("profile-list-file-empty", ["profile", "lenet5,@{tmp}/nomodels.txt"], "names no model"),
    ("profile-list-file-unknown", ["profile", "@{tmp}/existing.txt"], "unknown model 'keep me'"),
    ("profile-saved-model-missing", ["profile", "{tmp}/missing.keras"], "no saved model"),
    ("profile-factory-no-module", ["profile", "no_such_module_kb:build"], "cannot import 'no_such_module_kb'"),
    ("profile-factory-not-callable", ["profile", "os:sep"], "has no callable 'sep'"),
    ("sweep-glob-no-match", ["sweep", "nomatch*", "--out", "{tmp}/new.csv"], "matches no registered model"),
    ("sweep-saved-model-missing", ["sweep", "--models", "lenet5,{tmp}/missing.keras", "--out", "{tmp}/new.csv"],
     "no saved model"),
    ("sweep-config-unknown-preset", ["sweep", "--config", "nightlyy", "--out", "{tmp}/new.csv"],
     "neither a file nor a preset"),
    # ---- sweep --devices
    ("sweep-devices-zero", _sweep("--devices", "1,0"), "--devices"),
    ("sweep-devices-word", _sweep("--devices", "two"), "--devices"),
    ("sweep-devices-float", _sweep("--devices", "1.5"), "--devices"),
    ("sweep-devices-negative", _sweep("--devices", "-2"), "--devices"),
    ("sweep-devices-empty", _sweep("--devices", ""), "--devices"),
    # ---- sweep --shard
    ("sweep-shard-zero", _sweep("--shard", "0/3"), "--shard"),
    ("sweep-shard-above-n", _sweep("--shard", "4/3"), "--shard"),
    ("sweep-shard-no-slash", _sweep("--shard", "3"), "--shard"),
    ("sweep-shard-word", _sweep("--shard", "a/b"), "--shard"),
    ("sweep-shard-n-zero", _sweep("--shard", "0/0"), "--shard"),
    # ---- merge
    ("merge-out-exists", ["merge", "{tmp}/existing.txt", "{tmp}/sweep.csv"], "--force"),
    ("merge-out-is-an-input", ["merge", "{tmp}/sweep.csv", "{tmp}/sweep.csv", "--force"], "one of the inputs"),
    ("merge-out-dev-null", ["merge", "/dev/null", "{tmp}/sweep.csv", "--force"], "character device"),
    ("merge-out-directory", ["merge", "{tmp}/adir", "{tmp}/sweep.csv", "--force"], "directory"),
    ("merge-input-missing", ["merge", "{tmp}/merged.csv", "{tmp}/sweep.csv", "{tmp}/missing.csv"], "missing.csv"),
    ("merge-input-directory", ["merge", "{tmp}/merged.csv", "{tmp}/adir"], "directory"),
    ("merge-input-latin1", ["merge", "{tmp}/merged.csv", "{tmp}/latin1.csv"], "UTF-8"),
    ("merge-input-short-row", ["merge", "{tmp}/merged.csv", "{tmp}/sweep.csv", "{tmp}/short.csv"], "has 10 fields"),
    ("merge-input-other-header", ["merge", "{tmp}/merged.csv", "{tmp}/sweep.csv", "{tmp}/existing.txt"], "header"),
    ("merge-no-input", ["merge", "{tmp}/merged.csv"], "required"),
    ("merge-abbrev", ["merge", "{tmp}/merged.csv", "{tmp}/sweep.csv", "--forc"], "--forc"),
    # ---- integer lists and counts: ASCII digits, no empty item
    ("sweep-batch-empty-item", _sweep("--batch-sizes", "1,,2"), "empty item"),
    ("sweep-batch-trailing-comma", _sweep("--batch-sizes", "1,2,"), "empty item"),
    ("sweep-batch-superscript", _sweep("--batch-sizes", "\u00b2"), "positive integers"),
    ("sweep-batch-arabic-indic-digit", _sweep("--batch-sizes", "\u0661"), "positive integers"),
    ("sweep-batch-underscore", _sweep("--batch-sizes", "1_0"), "positive integers"),
    ("sweep-devices-empty-item", _sweep("--devices", "1,,2"), "empty item"),
    ("sweep-shard-superscript", _sweep("--shard", "\u00b2/3"), "--shard"),
    ("sweep-warmup-superscript", _sweep("--warmup", "\u00b2"), "--warmup"),
    ("config-batch-empty-item", ["sweep", "--config", "{tmp}/batches_empty_item.toml", "--out", "{tmp}/new.csv"],
     "empty item"),
    # ---- rows every reader refuses are refused by the writers too (one validator: schema.row_problem)
    *[(f"merge-row-{name}", ["merge", "{tmp}/merged.csv", f"{{tmp}}/bad-{name}.csv"], needle)
      for name, (_, needle) in BAD_ROWS.items()],
    *[(f"sweep-resume-row-{name}", _sweep("--resume", out=f"{{tmp}}/bad-{name}.csv"), needle)
      for name, (_, needle) in BAD_ROWS.items()],
    *[(f"compare-row-{name}", ["compare", f"{{tmp}}/bad-{name}.csv", "{tmp}/sweep.csv"], needle)
      for name, (_, needle) in BAD_ROWS.items()],
    ("merge-duplicate-key", ["merge", "{tmp}/merged.csv", "{tmp}/dupkey.csv"], "line 3 repeats the configuration"),
    ("sweep-resume-duplicate-key", _sweep("--resume", out="{tmp}/dupkey.csv"), "line 3 repeats the configuration"),
    ("compare-duplicate-key", ["compare", "{tmp}/dupkey.csv", "{tmp}/sweep.csv"], "repeats configuration"),
    ("merge-damaged-row", ["merge", "{tmp}/merged.csv", "{tmp}/damaged.csv"], ROW_CHECK_COLUMN),
    ("sweep-resume-damaged-row", _sweep("--resume", out="{tmp}/damaged.csv"), ROW_CHECK_COLUMN),
    ("compare-damaged-row", ["compare", "{tmp}/damaged.csv", "{tmp}/sweep.csv"], ROW_CHECK_COLUMN),
    ("sweep-resume-older-version", _sweep("--resume", out="{tmp}/older.csv"), "earlier kbench version"),
]


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Overrides conftest's: no case here builds a model (each is refused first), so there is no
    Keras state to clear, and clear_session's collection would cost seconds per case."""
    yield


def _workspace(root: Path):
    for name, data in FILES.items():
        (root / name).write_bytes(data)
    (root / "adir").mkdir()
    (root / "adir" / "inside.txt").write_text("x\n")
    os.symlink(root / "existing.txt", root / "link.txt")
    os.mkfifo(root / "fifo")


def snapshot(root: Path) -> dict:
    """Every entry under ``root``: its kind, mode and bytes (a symlink: its target)."""
    state = {}
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(directory) / name
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                state[str(path)] = ("link", os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                state[str(path)] = ("file", stat.S_IMODE(info.st_mode), path.read_bytes())
            else:
                state[str(path)] = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode))
    return state


def _devices():
    return {p: os.stat(p).st_mode for p in ("/dev/null", "/dev/full")}


def test_there_are_at_least_100_cases():
    assert len(CASES) >= 100
    assert len({case[0] for case in CASES}) == len(CASES)
    commands = {case[1][0] for case in CASES}
    assert {"sweep", "convert-benchmarks", "overhead", "profile", "list", "fit-flops", "compare", "history",
            "report"} <= commands


@pytest.mark.parametrize("argv, needle", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_one_line_and_exit_2(argv, needle, tmp_path, monkeypatch, capsys):
    _workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    before, devices = snapshot(tmp_path), _devices()
    code = main([arg.replace("{tmp}", str(tmp_path)) for arg in argv])
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2, (code, err)
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err and err.startswith("kbench")
    assert needle.lower() in err.lower(), err
    assert snapshot(tmp_path) == before, "a file was changed or created"
    assert _devices() == devices


@pytest.mark.parametrize("argv", [
    ["sweep", "lenet5", "--timeout", "inf", "--out", "{tmp}/new.csv"],
    ["convert-benchmarks", "{tmp}/batch_string.json", "--out", "{tmp}/sweep.csv", "--force"],
], ids=["sweep-timeout-inf", "convert-typed-fields"])
def test_bad_input_in_a_subprocess(argv, tmp_path):
    _workspace(tmp_path)
    before = snapshot(tmp_path)
    done = subprocess.run([sys.executable, "-m", "kbench", *[a.replace("{tmp}", str(tmp_path)) for a in argv]],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert snapshot(tmp_path) == before


# ----------------------------------------------------------------------------- documented behaviour

def test_a_header_without_its_newline_is_an_empty_sweep_csv(tmp_path, capsys):
    """A header-only file whose final newline is missing (someone's editor) is a sweep CSV with no
    row: merge writes an empty CSV and --resume continues it (here with nothing left to run)."""
    path = tmp_path / "header-only.csv"
    path.write_text(HEADER)
    assert main(["merge", str(tmp_path / "merged.csv"), str(path)]) == 0
    assert "merged 0 rows" in capsys.readouterr().err
    assert (tmp_path / "merged.csv").read_text() == HEADER + "\n"
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in _sweep("--resume", "--time-budget", "0.000001",
                                                                   out=str(path))]
    assert main(argv) == 0, capsys.readouterr().err
    assert path.read_text() == HEADER + "\n"  # the newline completed, nothing else


def test_a_saved_model_with_a_lambda_layer_is_refused(tmp_path, capsys):
    """``.keras`` files load with Keras' safe mode: a Lambda layer's Python code is never
    deserialised, let alone run (the marker file its function would write stays absent)."""
    import keras

    marker = tmp_path / "lambda-ran"
    inputs = keras.Input((8, 8, 3))
    touch = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")  # no closure: Keras saves its code
    outputs = keras.layers.Lambda(touch)(inputs)
    outputs = keras.layers.GlobalAveragePooling2D()(outputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    marker.unlink()  # building the model above ran the function once
    before = snapshot(tmp_path)
    code = main(["profile", str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "Lambda" in err, err
    assert not marker.exists()
    assert snapshot(tmp_path) == before
