"""Tables people read and the output side of the commands: human numbers with units in the
headers (raw integers in CSV/JSON), Markdown and LaTeX, the per-layer table (totals, shares,
shapes, --depth, uncounted ops per layer), per-layer CSV, the profile JSON document, class counts
and --set variants in rows and resume keys, model memory, messages, --version and bare ``kbench``.

In-process through ``kbench.cli.main``; one sweep runs a real worker (lenet5, 32x32, one step).
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from kbench.cli import main
from kbench.common.humanize import human_count, natural_key, render_table


def _csv(text):
    return list(csv.DictReader(io.StringIO(text)))


# ---- numbers for people -----------------------------------------------------------------------
@pytest.mark.parametrize("value, shown", [
    (25_557_032, "25.56M"), (4_089_184_256, "4.09G"), (61_706, "61.71k"), (416_520, "416.52k"), (120, "120"),
    (999_999_999, "1.00G"), (0, "0"), (None, ""), ("", ""), (float("nan"), ""), (0.5, "0.50"), (1.2e12, "1.20T"),
])
def test_human_count_prints_two_decimals_and_a_suffix(value, shown):
    assert human_count(value) == shown


def test_natural_order_puts_resnet18_before_resnet101():
    names = ["resnet101", "resnet18", "resnet152", "resnet34", "vgg16", "vgg11"]
    assert sorted(names, key=natural_key) == ["resnet18", "resnet34", "resnet101", "resnet152", "vgg11", "vgg16"]


def test_table_formats_share_one_renderer():
    rows = [{"model": "a_b|c", "macs": 4_089_184_256}, {"model": "x", "macs": "416520"}]
    table = render_table(["model", "macs"], rows, "table", totals={"model": "total", "macs": 4_089_600_776})
    lines = table.splitlines()
    assert lines[0].split() == ["model", "MACs"]
    assert lines[2].split() == ["a_b|c", "4.09G"] and lines[3].split() == ["x", "416.52k"]
    assert lines[-1].split() == ["total", "4.09G"] and set(lines[-2]) == {"─"}
    markdown = render_table(["model", "macs"], rows, "markdown").splitlines()
    assert markdown[0].replace(" ", "") == "|model|MACs|" and markdown[1].replace("-", "") == "|:|:|"
    assert "a_b\\|c" in markdown[2]  # a '|' in a cell does not end it
    latex = render_table(["model", "macs"], rows, "latex")
    assert "\\begin{tabular}{lr}" in latex and "a\\_b" in latex and "4.09G" in latex


# ---- profile: tables, CSV and JSON ----------------------------------------------------------------
def test_profile_table_is_human_and_csv_json_are_raw(capsys):
    assert main(["profile", "lenet5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "MACs" in lines[0] and "params" in lines[0].split()
    assert "416.52k" in lines[2] and "61.71k" in lines[2] and "416,520" not in lines[2]
    assert main(["profile", "lenet5", "--format", "csv"]) == 0
    assert _csv(capsys.readouterr().out)[0]["macs"] == "416520"
    assert main(["profile", "lenet5", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"][0]["macs"] == 416_520


@pytest.mark.parametrize("fmt, marker", [("markdown", "|:"), ("latex", "\\begin{tabular}")])
def test_profile_and_list_print_markdown_and_latex(fmt, marker, capsys):
    assert main(["profile", "lenet5", "--per-layer", "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert out.count("\n" + marker) + out.startswith(marker) == 2 if fmt == "latex" else \
        sum(line.startswith(marker) for line in out.splitlines()) == 2  # summary + lenet5's per-layer table
    assert "416.52k" in out and ("c1\\_conv" in out if fmt == "latex" else "c1_conv" in out)
    assert main(["list", "--family", "lenet", "--format", fmt]) == 0
    assert marker in capsys.readouterr().out


def test_profile_json_is_one_document_with_environment_and_reported_figures(capsys):
    assert main(["profile", "lenet5", "--format", "json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert set(one) == {"environment", "models"} and len(one["models"]) == 1
    assert one["environment"]["tf_version"] and one["environment"]["run_id"]
    entry = one["models"][0]
    assert entry["model"] == "lenet5" and entry["status"] == "ok" and entry["num_classes"] == 10
    assert entry["params_trainable"] == 61_706 and entry["input_shape"] == [32, 32, 1]
    for key in ("reported_params", "reported_macs", "reported_source", "reported_convention", "reported_input_size"):
        assert key in entry
    assert (entry["reported_params"], entry["reported_macs"]) == (61_706, 416_520)
    assert entry["reported_input_size"] == "32x32" and entry["reported_convention"] == "macs"
    assert main(["profile", "lenet5", "--num-classes", "7", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"][0]["num_classes"] == 7


def test_profile_json_has_the_same_shape_for_several_models(capsys):
    assert main(["profile", "lenet5,vgg11", "--input-size", "32", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"environment", "models"}
    assert [m["model"] for m in document["models"]] == ["lenet5", "vgg11"]


# ---- per-layer --------------------------------------------------------------------------------
def test_per_layer_table_has_totals_shares_shapes_and_uncounted_ops(capsys):
    assert main(["profile", "lenet5", "--per-layer"]) == 0
    out = capsys.readouterr().out
    layer_table = out[out.index("lenet5 per layer"):].splitlines()
    header = layer_table[2]
    for title in ("input_shape", "output_shape", "params %", "MACs %", "uncounted_ops"):
        assert title in header
    rows = {line.split()[0]: line.split() for line in layer_table[4:] if line.strip() and set(line.strip()) != {"─"}}
    assert rows["c1_conv"][2:4] == ["32x32x1", "28x28x6"]
    assert rows["c1_tanh"][-1] == "Tanh:1"  # the activation's op, attributed to its layer
    assert rows["total"][1:3] == ["61.71k", "100.0"] and "416.52k" in rows["total"] and rows["total"][-1] == "Tanh:4"


def test_per_layer_json_rows_carry_shares_and_uncounted_ops(capsys):
    assert main(["profile", "lenet5", "--per-layer", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)["models"][0]
    rows = record["per_layer"]
    assert sum(r["macs_pct"] for r in rows) == pytest.approx(100, abs=0.05)
    assert sum(r["params_pct"] for r in rows) == pytest.approx(100, abs=0.05)
    merged = {}
    for row in rows:
        for op, count in row["uncounted_ops"].items():
            merged[op] = merged.get(op, 0) + count
    assert merged == record["uncounted_ops"]


def test_per_layer_depth_folds_nested_models():
    import keras

    from kbench.counting.profiling import group_per_layer, layer_group, profile_model

    backbone_in = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(backbone_in)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv2")(x)
    backbone = keras.Model(backbone_in, x, name="backbone")
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1, name="head")(backbone(inputs)))
    record = profile_model(model, (8, 8, 3), per_layer=True)
    full = record["per_layer"]
    assert [r["name"] for r in full if r["name"].startswith("backbone/")] == [
        "backbone/conv1", "backbone/relu1", "backbone/conv2"]
    folded = group_per_layer(full, 1)
    assert [r["name"] for r in folded] == [layer_group(full[0]["name"], 1), "backbone", "head"]
    backbone_row = folded[1]
    assert backbone_row["macs"] == 8 * 8 * 4 * 3 * 3 * 3 + 8 * 8 * 4 * 3 * 3 * 4
    assert backbone_row["params"] == (3 * 3 * 3 * 4 + 4) + (3 * 3 * 4 * 4 + 4)
    assert backbone_row["uncounted_ops"] == {"Relu": 1}
    assert backbone_row["input_shape"] == [8, 8, 3] and backbone_row["output_shape"] == [8, 8, 4]
    for key in ("params", "macs", "flops_tf", "mem_access"):
        assert sum(r[key] for r in folded) == sum(r[key] for r in full)
    assert group_per_layer(full, 3) == full  # every name has at most 3 levels: nothing folds


def test_per_layer_csv_out_writes_every_models_layer_rows(tmp_path, capsys):
    out = tmp_path / "layers.csv"
    assert main(["profile", "lenet5,vgg11", "--input-size", "32", "--per-layer", "--format", "csv",
                 "--out", str(out)]) == 0
    rows = _csv(out.read_text())
    assert {r["model"] for r in rows} == {"lenet5", "vgg11"}
    lenet = [r for r in rows if r["model"] == "lenet5"]
    assert sum(int(r["macs"]) for r in lenet) == 416_520 and lenet[1]["name"] == "c1_conv"
    assert lenet[1]["input_shape"] == "32x32x1" and lenet[1]["num_classes"] == "10"
    assert f"wrote {len(rows)} rows to {out}" in capsys.readouterr().err
    # --resume skips models already in a per-layer file; the same holds on standard output.
    assert main(["profile", "lenet5,vgg11", "--input-size", "32", "--per-layer", "--format", "csv",
                 "--out", str(out), "--resume"]) == 0
    assert len(_csv(out.read_text())) == len(rows)
    capsys.readouterr()
    assert main(["profile", "lenet5,vgg11", "--input-size", "32", "--per-layer", "--format", "csv"]) == 0
    assert {r["model"] for r in _csv(capsys.readouterr().out)} == {"lenet5", "vgg11"}


# ---- class counts and variants ------------------------------------------------------------------
def test_profile_records_num_classes_and_resumes_on_it(tmp_path, capsys):
    out = tmp_path / "p.csv"
    assert main(["profile", "lenet5", "--num-classes", "7", "--format", "csv", "--out", str(out)]) == 0
    assert main(["profile", "lenet5", "--num-classes", "10", "--format", "csv", "--out", str(out), "--resume"]) == 0
    assert main(["profile", "lenet5", "--num-classes", "7", "--format", "csv", "--out", str(out), "--resume"]) == 0
    rows = _csv(out.read_text())
    assert [(r["num_classes"], r["params_trainable"]) for r in rows] == [("7", str(61_706 - 3 * 85)), ("10", "61706")]
    assert "already in the file" in capsys.readouterr().err


def test_sweep_resume_key_includes_num_classes():
    from kbench.models import registry
    from kbench.running.plan import Config
    from kbench.results.schema import SWEEP_COLUMNS, row_key

    def config(classes):
        return Config(registry.resolve("lenet5", (32, 32), classes), 1, "infer", "tensorflow", "float32", False, 0, 1)

    row = {c: "" for c in SWEEP_COLUMNS}
    row.update(model="lenet5", input_h="32", input_w="32", batch_size="1", mode="infer", backend="tensorflow",
               precision="float32", jit="false", num_classes="10")
    assert row_key(row) == config(None).key == config(10).key
    assert row_key(row) != config(7).key


def test_tables_name_the_set_variant_and_class_count(capsys):
    from kbench.running.rows import summary_rows

    assert main(["profile", "lenet5", "--set", "activation=relu", "--num-classes", "7"]) == 0
    assert capsys.readouterr().out.splitlines()[2].startswith("lenet5 [activation=relu, num_classes=7]")
    row = {"model": "resnet50", "variant": '{"groups": 32}', "num_classes": "1000", "batch_size": 1, "mode": "infer",
           "backend": "tensorflow", "precision": "float32", "jit": "false", "samples_per_s": 1.0,
           "latency_ms_p50": 1.0, "cv": 0.0, "status": "ok"}
    assert summary_rows([row])[0]["model"] == "resnet50 [groups=32]"


def test_sweep_table_has_params_gmacs_and_three_significant_digits():
    from kbench.running.rows import SUMMARY_COLUMNS, noisy_rows, summary_rows

    row = {"model": "resnet18", "variant": "", "num_classes": "", "batch_size": "8", "mode": "train",
           "backend": "tensorflow", "precision": "float32", "jit": "false", "samples_per_s": "1234.567",
           "latency_ms_p50": "6.48123", "cv": "0.04008", "status": "ok", "params_trainable": "11689512",
           "macs": "1818558976", "n_iters": "10"}
    shown = summary_rows([row, dict(row, cv="0.2497")])
    assert list(shown[0]) == list(SUMMARY_COLUMNS)
    assert [(s["samples/s"], s["p50 ms"], s["cv"], s["GMACs"]) for s in shown] == [
        ("1.23k", "6.48", "0.0401", "1.82"), ("1.23k", "6.48", "0.25", "1.82")]
    table = main_table(shown)
    assert "11.69M" in table and "params" in table and "GMACs" in table
    # cv / sqrt(10 steps): 0.0401 -> 1.3% (fine for a 10% threshold); 0.25 -> 7.9% (> 5%: too noisy)
    noisy = noisy_rows([row, dict(row, cv="0.2497"), dict(row, cv="0.9", status="error")], 0.10)
    assert [(r["cv"], round(spread, 3)) for r, spread in noisy] == [("0.2497", 0.079)]


def main_table(rows):
    from kbench.common.humanize import render_table
    from kbench.running.rows import SUMMARY_COLUMNS

    return render_table(SUMMARY_COLUMNS, rows)


# ---- writers never overwrite silently -------------------------------------------------------------
def test_every_profile_format_and_convert_benchmarks_refuse_to_overwrite(tmp_path, capsys):
    from tests.test_bad_input import _benchmark

    for fmt in ("table", "markdown", "latex", "json", "csv"):
        out = tmp_path / f"profile.{fmt}"
        out.write_text("keep me\n")
        assert main(["profile", "lenet5", "--format", fmt, "--out", str(out)]) == 2, fmt
        assert out.read_text() == "keep me\n"
    assert main(["profile", "lenet5", "--format", "markdown", "--out", str(out), "--force"]) == 0
    assert "MACs (K)" in out.read_text() and "416.52" in out.read_text()
    source = tmp_path / "bench.json"
    source.write_text(json.dumps(_benchmark()))
    target = tmp_path / "bench.csv"
    target.write_text("keep me\n")
    assert main(["convert-benchmarks", str(source), "--out", str(target)]) == 2
    assert target.read_text() == "keep me\n" and "--force" in capsys.readouterr().err
    assert main(["convert-benchmarks", str(source), "--out", str(target), "--force"]) == 0
    assert "wrote 1 row to" in capsys.readouterr().err


# ---- messages, help and version ----------------------------------------------------------------
def test_profile_out_says_how_many_rows_it_wrote(tmp_path, capsys):
    out = tmp_path / "p.txt"
    assert main(["profile", "lenet5", "--out", str(out)]) == 0
    assert capsys.readouterr().err.strip() == f"kbench: wrote 1 row to {out}"


def test_several_models_log_one_line_each(capsys):
    assert main(["profile", "lenet5,vgg11", "--input-size", "32", "--format", "csv"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("kbench: [1/2] lenet5: 61.71k params, 416.52k MACs")
    assert err[1].startswith("kbench: [2/2] vgg11: ")


def test_list_is_in_natural_order(capsys):
    assert main(["list", "--family", "resnet", "--format", "csv"]) == 0
    names = [r["model"] for r in _csv(capsys.readouterr().out)]
    assert names.index("resnet18") < names.index("resnet34") < names.index("resnet101")


@pytest.mark.parametrize("argv", [["sweep", "lenet5", "--batch-sizes"], ["sweep", "--bogus"], ["profile"]])
def test_usage_errors_name_kbench_once(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("kbench: error: ") and err.count("kbench") == 1 and err.count("\n") == 1


def test_bad_set_value_names_the_option_and_what_is_allowed(capsys):
    assert main(["profile", "resnet18", "--set", "depth=19", "--input-size", "32"]) == 2
    err = capsys.readouterr().err
    assert "depth=19 is not allowed for resnet18" in err and "18, 34, 50, 101, 152" in err
    assert "cannot build" not in err


def test_bare_kbench_prints_help_and_version_names_the_frameworks(capsys):
    assert main([]) == 0
    assert capsys.readouterr().out.startswith("usage: kbench")
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    version = capsys.readouterr().out
    assert version.startswith("kbench ") and "TensorFlow 2." in version and "Keras 3." in version
    assert "backend: tensorflow" in version


# ---- sweep -----------------------------------------------------------------------------------------
def test_sweep_logs_each_configuration_off_a_terminal_and_counts_rows_in_words(tmp_path, monkeypatch, capsys):
    from kbench.running import sweep
    from kbench.running.sweep import SweepResult
    from kbench.results.schema import SWEEP_COLUMNS

    def fake_run_sweep(resolved, on_row=None):
        row = {c: "" for c in SWEEP_COLUMNS}
        row.update(model="lenet5", variant='{"activation": "relu"}', num_classes="7", batch_size="1", mode="infer",
                   backend="tensorflow", precision="float32", jit="false", status="ok", samples_per_s=123.4)
        on_row(row)  # no progress bar: the command logs each row
        return SweepResult(resolved.spec.out, [row], 0, 0)

    monkeypatch.setattr(sweep, "run_sweep", fake_run_sweep)
    out = tmp_path / "s.csv"
    assert main(["sweep", "lenet5", "--no-progress", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[2].startswith("lenet5 [activation=relu, num_classes=7]")
    err = captured.err.splitlines()
    assert err[0] == ("kbench: lenet5 [activation=relu, num_classes=7] batch 1 infer tensorflow float32 "
                      "jit=false: ok, 123 samples/s")
    assert err[1] == f"kbench: 1 row appended to {out} (1 ok)"


def test_sweep_rows_carry_the_model_memory():
    from kbench.models import registry
    from kbench.running.plan import Config
    from kbench.running.rows import make_row
    from kbench.results.schema import SWEEP_COLUMNS

    cfg = Config(registry.resolve("lenet5", (32, 32), 7), 1, "infer", "tensorflow", "float32", False, 0, 1)
    row = make_row(cfg, {"status": "ok", "samples_per_s": 10.0, "peak_mem_mb": 736.84, "model_mem_mb": 14.29,
                         "peak_mem_source": "host_rss"}, {}, "run", {}, None)
    assert set(row) <= set(SWEEP_COLUMNS) and "model_mem_mb" in SWEEP_COLUMNS
    assert (row["peak_mem_mb"], row["model_mem_mb"], row["num_classes"]) == (736.84, 14.29, 7)


@pytest.mark.slow
def test_sweep_records_model_memory_classes_and_logs_each_configuration(tmp_path, capsys):
    out = tmp_path / "s.csv"
    argv = ["sweep", "lenet5", "--num-classes", "7", "--input-size", "32", "--batch-sizes", "1", "--modes", "infer",
            "--no-jit", "--warmup", "0", "--iters", "1", "--no-progress", "--profile-cache", str(tmp_path / "pc"),
            "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    row = _csv(out.read_text())[0]
    assert row["status"] == "ok" and row["num_classes"] == "7" and row["peak_mem_source"] == "host_rss"
    # The model's own working set: the worker's peak minus its baseline (TensorFlow itself).
    assert 0 <= float(row["model_mem_mb"]) < float(row["peak_mem_mb"])
    assert captured.out.splitlines()[2].startswith("lenet5 [num_classes=7]")
    err = captured.err.splitlines()
    assert err[0].startswith("kbench: lenet5 [num_classes=7] batch 1 infer tensorflow float32 jit=false: ok")
    assert err[-1].startswith(f"kbench: 1 row appended to {out}")


def test_model_memory_is_peak_minus_baseline_on_cpu():
    from kbench.running.timing import model_memory_mb

    assert model_memory_mb(736.8, "host_rss", 722.5) == pytest.approx(14.3)
    assert model_memory_mb(700.0, "host_rss", 710.0) == 0.0
    assert model_memory_mb(512.0, "device", 700.0) == 512.0
    assert model_memory_mb(None, "host_rss", 700.0) is None
    assert model_memory_mb(736.8, "host_rss_lifetime", 722.5) is None  # a lifetime peak says nothing of one model


def test_sweep_row_without_num_classes_is_for_the_default_count():
    from kbench.models import registry
    from kbench.running.plan import Config
    from kbench.results.schema import row_key

    row = {"model": "lenet5", "input_h": "32", "input_w": "32", "variant": "", "batch_size": "1", "mode": "infer",
           "backend": "tensorflow", "precision": "float32", "jit": "false", "num_classes": ""}
    default = Config(registry.resolve("lenet5", (32, 32), None), 1, "infer", "tensorflow", "float32", False, 0, 1)
    assert row_key(row) == default.key
    assert row_key(dict(row, model="test_block"))[-1] == ""  # not a registered model: no default to assume


def test_profile_json_lists_a_failed_model_with_its_error(monkeypatch, capsys):
    from kbench.counting import profiling

    real = profiling.profile

    def profile_or_fail(request, **options):
        if request.name == "vgg11":
            raise RuntimeError("simulated failure")
        return real(request, **options)

    monkeypatch.setattr(profiling, "profile", profile_or_fail)
    assert main(["profile", "lenet5,vgg11", "--input-size", "32", "--format", "json"]) == 1
    models = json.loads(capsys.readouterr().out)["models"]
    assert [(m["model"], m["status"]) for m in models] == [("lenet5", "ok"), ("vgg11", "error")]
    assert models[1]["error"] == "RuntimeError: simulated failure" and models[1]["num_classes"] == 1000
