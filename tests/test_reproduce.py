"""``kbench reproduce``: verdicts, checks that run, the report's schema and formats (paper-ready
markdown and LaTeX), a user's own table file, and --speed on a tiny table.

The default suite reproduces every table once (``reproduce all`` builds the ~80 models the tables
and their checks name, one to three minutes on this 2-core machine) and checks the single-layer worked examples,
LeNet-5, SqueezeNet's bypass table, the memory table and the model-swap test in detail.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from kbench.cli import main
from kbench.papers.loader import REPORT_COLUMNS, VERDICTS, load_table, parse_printed, parse_table
from kbench.papers.reproduce import reproduce, verdict, verdict_counts

FAST_TABLES = ["conv_vs_separable", "lenet_feature_maps", "squeezenet_bypass"]


def _value(text, **fields):
    from kbench.papers.loader import PrintedValue

    parsed = parse_printed(text)
    return PrintedValue(quantity="macs", text=text, unit="macs", convention="macs", value=parsed.value,
                        decimals=parsed.decimals, scale=parsed.scale, **fields)


def test_verdicts_by_hand():
    assert verdict(4_109_000_000, 4_109_000_000, _value("4.109G")) == "exact"
    assert verdict(4_109_000_000, 4_109_364_224, _value("4.109G")) == "rounding"      # |d| <= 0.0005G
    assert verdict(4_109_000_000, 4_109_600_000, _value("4.109G")) == "unexplained"
    assert verdict(120_000_000, 118_013_952, _value("120M", tolerance=0.02)) == "tolerance"
    # a note explains nothing: only a check that runs makes a row "explained" (test_a_check_...)
    assert verdict(120_000_000, 100_000_000, _value("120M", tolerance=0.02, note="a typo")) == "unexplained"
    assert verdict((28, 28, 6), (28, 28, 6), _value("4.1G")) == "exact"


@pytest.fixture(scope="module")
def fast_report():
    return reproduce([load_table(t) for t in FAST_TABLES])


def test_one_row_per_printed_number_with_a_verdict(fast_report):
    tables = [load_table(t) for t in FAST_TABLES]
    assert len(fast_report) == sum(len(t.printed_values()) for t in tables)
    assert all(set(REPORT_COLUMNS) <= set(entry) for entry in fast_report)
    assert all(entry["verdict"] in VERDICTS for entry in fast_report)
    counts = verdict_counts(fast_report)
    assert sum(counts.values()) == len(fast_report)


def test_worked_convolution_example_is_computed_by_a_real_conv2d(fast_report):
    worked = [e for e in fast_report if e["table"] == "conv_vs_separable"]
    assert [e["measured"] for e in worked] == [12, 12, 17, 10, 17, 19, 9, 6, 14]
    assert {e["verdict"] for e in worked} == {"exact"}


def test_lenet_numbers_reproduce(fast_report):
    lenet = {(e["row"], e["quantity"]): e for e in fast_report if e["table"] == "lenet_feature_maps"}
    total = lenet[("LeNet-5 (lenet5 为例) [all layers: with biases]", "params")]
    assert (total["reported"], total["measured"], total["verdict"]) == (61706, 61706, "exact")
    assert lenet[("卷积核: 16 kernels of 2×2×3 with bias [with bias]", "params")]["measured"] == 208
    assert lenet[("全连接层: 16 inputs, 133 outputs, with bias [the example]", "params")]["measured"] == 2261
    shapes = [e for e in lenet.values() if e["quantity"] == "output_shape"]
    assert shapes and {e["verdict"] for e in shapes} == {"exact"}


def test_accuracy_is_counted_as_accuracy_and_model_size_is_measured(fast_report):
    squeeze = [e for e in fast_report if e["table"] == "squeezenet_bypass"]
    assert {e["verdict"] for e in squeeze if e["quantity"] in ("top1", "top5")} == {"accuracy"}
    vanilla = next(e for e in squeeze if e["quantity"] == "model_size_mb")
    assert vanilla["verdict"] == "rounding" and round(vanilla["measured"], 2) == 4.76  # 1,248,424 x 4 B in MiB


def test_csv_columns_exactly_and_summary_on_stderr_with_out(tmp_path, capsys):
    out = tmp_path / "report.csv"
    assert main(["reproduce", "conv_vs_separable", "--format", "csv", "--out", str(out)]) == 0
    assert "kbench: 9 of 9 printed numbers compared (exact 9)" in capsys.readouterr().err
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert tuple(rows[0]) == REPORT_COLUMNS and len(rows) == 9
    assert {"model", "input_size", "convention", "check", "check_measured"} <= set(rows[0])
    assert rows[0]["model"] == "single Conv2D layer" and rows[0]["input_size"] == "5x5"
    assert main(["reproduce", "conv_vs_separable", "--format", "csv", "--out", str(out)]) == 2  # exists
    assert main(["reproduce", "conv_vs_separable", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["verdicts"]["exact"] == 9 and len(payload["rows"]) == 9 and payload["compared"] == 9
    assert payload["tables"][0]["citation"]["authors"] == "bryant8" and payload["tables"][0]["coverage"] == "9 printed, 9 rows"


def test_markdown_lays_each_table_out_as_printed_with_kbench_beside_it(capsys):
    assert main(["reproduce", "mobilenet_v1_table6"]) == 0
    text = capsys.readouterr().out
    assert "## Verdicts" in text and "## mobilenet_v1_table6: Table 6. MobileNet Width Multiplier" in text
    assert "Howard et al. 2017, MobileNets" in text and "arXiv:1704.04861, Table 6" in text
    assert "12 printed, 12 rows" in text and "mobilenet_v1_050 at 224x224 (0.5 MobileNet-224)" in text
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| Width Multiplier"))
    assert "Million Mult-Adds (paper)" in header and "kbench (macs)" in header and "kbench (torchvision)" in header
    row = next(line for line in lines if line.startswith("| 1.0 MobileNet-224"))
    assert [cell.strip() for cell in row.strip("|").split("|")] == ["1.0 MobileNet-224", "70.6%", "569", "569", "4.2", "4.2"]
    assert "569000000" not in text


def test_list_names_every_table_with_its_coverage(capsys):
    from kbench.papers.loader import table_ids

    assert main(["reproduce", "--list", "--format", "csv"]) == 0
    listed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["table"] for r in listed] == table_ids()
    resnet = next(r for r in listed if r["table"] == "resnet_table")
    assert resnet["coverage"] == "139 printed, 139 rows" and resnet["source"].startswith("He et al. 2016")
    assert all(r["printed_numbers"] == r["rows"] for r in listed)


CITATION = """
[citation]
authors = "A. Author, B. Author"
title = "A paper of our own"
year = 2025
venue = "in preparation"
table = "Table 1"
"""

SPEED_TABLE = """
id = "tiny_speed"
title = "two LeNets"
convention = "none"
baseline = "small"
""" + CITATION + """
[[rows]]
label = "small"
model = "lenet5"
input_size = [32, 32]
values = [{ quantity = "gpu_speed", text = "100", unit = "batches_per_s" }]

[[rows]]
label = "large"
model = "lenet5"
input_size = [64, 64]
values = [{ quantity = "gpu_speed", text = "40", unit = "batches_per_s" }]
"""


def test_speed_ratios_on_a_tiny_table(tmp_path):
    from kbench.papers.speed import add_speed_ratios, ordering

    path = tmp_path / "tiny_speed.toml"
    path.write_text(SPEED_TABLE, encoding="utf-8")
    table = parse_table(path)
    report = reproduce([table])
    assert [e["verdict"] for e in report] == ["speed", "speed"]
    add_speed_ratios([table], report, iters=1, warmup=0)
    small, large = report
    assert small["speed_ordering"] == "baseline" and small["measured_speed_ratio"] == 1.0
    assert large["reported_speed_ratio"] == 0.4
    assert large["speed_ordering"] in ("same", "reversed") and large["measured_speed_ratio"] > 0
    assert ordering(0.5, 0.4) == "same" and ordering(1.5, 0.4) == "reversed" and ordering(1.01, 0.99) == "same"


def test_reproduce_all(tmp_path):
    out = tmp_path / "all.json"
    assert main(["reproduce", "all", "--format", "json", "--out", str(out)]) == 0
    payload = json.loads(out.read_text(encoding="utf-8"))
    rows, counts = payload["rows"], payload["verdicts"]
    assert sum(counts.values()) == len(rows) == payload["printed_numbers"] == 1047
    assert payload["compared"] >= 800 and counts["unexplained"] <= 0.03 * payload["compared"]
    assert counts["unreadable"] == 10
    # Every explained row says what was computed and gives its value; every unexplained row says why.
    explained = [r for r in rows if r["verdict"] == "explained"]
    assert explained and all(r["check"] and r["check_measured"] not in (None, "") for r in explained)
    assert all(r["note"] for r in rows if r["verdict"] == "unexplained")
    # Every number kbench can measure is measured: nothing is left "not compared yet".
    assert counts["not_measurable"] == 0
    resnet = next(r for r in rows if r["table"] == "dsnet_detail" and r["row"] == "ResNet50: ImageNet1K"
                  and r["quantity"] == "macs")
    assert (resnet["measured"], resnet["verdict"], resnet["measured_text"]) == (4_109_364_224, "rounding", "4.109G")


def test_printed_formulas_are_checked_on_real_layers():
    from kbench.papers.reproduce import check_formulas

    rows = {r["formula"]: r for r in check_formulas([load_table("conv_vs_separable"), load_table("lenet_feature_maps")])}
    # A 3x3 stride-2 Conv2D 4 -> 5 channels on 11x11, a separable conv on 9x9, a Dense 16 -> 7.
    assert (rows["conv_params"]["formula_value"], rows["conv_params"]["measured"]) == (180, 180)
    assert rows["separable_flops"]["verdict"] == "exact" and rows["separable_flops"]["measured"] == 2 * (9 + 5) * 7 * 7 * 4
    assert rows["dense_params"]["measured"] == (16 + 1) * 7 and rows["dense_macs"]["verdict"] == "exact"
    assert rows["conv_output_size"]["measured"] == 5 and rows["conv_output_size"]["verdict"] == "exact"
    # Caffe-style ceil vs Keras' floor; TF's BiasAdd vs the formula's folded bias add.
    assert (rows["pool_output_size"]["formula_value"], rows["pool_output_size"]["measured"]) == (5, 4)
    assert rows["pool_output_size"]["verdict"] == "explained"
    assert rows["conv_flops_with_bias"]["measured"] - rows["conv_flops_with_bias"]["formula_value"] == 5 * 5 * 5
    assert rows["conv_flops_exact"]["verdict"] == "not_measurable"


def _memory_value(quantity, at, unit, layers="*"):
    from kbench.papers.loader import PrintedValue

    return PrintedValue(quantity=quantity, text="1", unit=unit, convention="paper", value=1, at=at, layers=layers)


def test_activation_memory_by_hand():
    import keras

    from kbench.papers.reproduce import ModelMeasurements, NotMeasured

    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="a")(inputs)             # 8 x 8 x 4
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="b")(x)      # 4 x 4 x 6
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)                    # 6, a 1 x 1 map
    measure = ModelMeasurements(keras.Model(inputs, x), "tiny", (8, 8, 3)).measure
    assert measure(_memory_value("max_channels", "8x8", "count"), 1) == 4
    assert measure(_memory_value("max_channels", "1x1", "count"), 1) == 6
    assert measure(_memory_value("memory", "4x4", "kb"), 1) == 4 * 4 * 6 * 2 / 1000   # 16-bit activations
    assert measure(_memory_value("peak_memory", "max", "bytes"), 1) == 8 * 8 * 4 * 2    # the 8x8x4 map, not the image
    assert measure(_memory_value("peak_memory", "max", "bytes", layers="b,pool"), 1) == 4 * 4 * 6 * 2
    with pytest.raises(NotMeasured, match="3x3"):
        measure(_memory_value("memory", "3x3", "kb"), 1)


def test_mobilenet_v2_memory_table_is_measured_from_activation_sizes():
    from architectures.shufflenet import shufflenet_v1

    report = reproduce([load_table("mobilenet_v2_memory")])
    counts = {verdict: n for verdict, n in verdict_counts(report).items() if n}
    assert counts == {"exact": 8, "rounding": 1, "tolerance": 6, "explained": 18, "unreadable": 3}
    v1 = [e["measured"] for e in report if e["row"].startswith("MobileNetV1") and e["quantity"] == "max_channels"]
    assert v1 == [None, 128, 256, 512, 1024, 1024]
    # The explanation of the ShuffleNet column: its widths are g=2's at 2x, not g=3's.
    g2 = shufflenet_v1(input_shape=(64, 64, 3), groups=2, scale=2.0)
    assert [g2.get_layer(f"stage{s}_unit1_relu").output.shape[-1] for s in (2, 3, 4)] == [400, 800, 1600]


def test_parameter_conventions_by_hand():
    import keras

    from kbench.papers.loader import PrintedValue
    from kbench.papers.reproduce import ModelMeasurements

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)                       # 108 kernel + 4 bias
    x = keras.layers.BatchNormalization(name="bn")(x)                        # 4 gamma, 4 beta, 8 statistics
    x = keras.layers.Dense(5, name="fc")(keras.layers.GlobalAveragePooling2D()(x))  # 20 kernel + 5 bias
    measurements = ModelMeasurements(keras.Model(inputs, x), "tiny", (8, 8, 3))
    counts = {convention: measurements.measure(PrintedValue(quantity="params", text="1", unit="params",
                                                            convention=convention, value=1), 1)
              for convention in ("torchvision", "keras", "weights_and_biases")}
    assert counts == {"torchvision": 145, "keras": 153, "weights_and_biases": 137}


def test_g3_speed_columns_run_each_block_at_its_own_width():
    from kbench.models import registry
    from kbench.papers.speed import _baseline

    table = load_table("shufflenet_v2_g3")
    entries = [(row, value, {}) for row, value in table.printed_values()]
    assert len(entries) == 30
    for row, value, _ in entries:
        width = int(value.at.removeprefix("c="))
        assert registry.resolve(row.model, row.input_size, row.num_classes, dict(row.set)).input_shape == (56, 56, width)
        base_row, base_value, _ = _baseline(table, entries, row, value)
        assert (base_row.label, base_value.at, base_row.input_size[2]) == ("1-fragment", value.at, width)


# ------------------------------------------------------------------ explanations are checks that run

def _fcanet_row(model):
    return f"""
[[rows]]
label = "FcaNet50"
model = "{model}"
input_size = [224, 224]
values = [
  {{ quantity = "params", text = "30.121M", unit = "params", convention = "torchvision", check = {{ says = "kbench's count plus a second classifier of the size of its head_fc", expression = "measured + head", measure = {{ head = {{ quantity = "params", layers = "head_fc" }} }} }} }},
  {{ quantity = "macs", text = "4.112G", unit = "macs", part = "backbone" }},
]
"""


def test_a_row_that_points_at_another_model_is_no_longer_explained(tmp_path):
    """dsnet_imagenet's FcaNet50 row, as shipped and with its model swapped for resnet18."""
    shipped = load_table("dsnet_imagenet").path.read_text(encoding="utf-8")
    assert 'model = "fcanet50"' in shipped and "measured + head" in shipped
    header = 'id = "swap"\ntitle = "ImageNet1K"\nconvention = "mmengine"\n' + CITATION
    for model, verdicts in (("fcanet50", {"explained", "rounding"}), ("resnet18", {"unexplained"})):
        path = tmp_path / "swap.toml"
        path.write_text(header + _fcanet_row(model), encoding="utf-8")
        params, macs = reproduce([parse_table(path)])
        assert {params["verdict"], macs["verdict"]} == verdicts, model
        if model == "fcanet50":
            assert params["check_measured"] == 30_120_976 and "reproduces the printed figure" in params["check"]
        else:
            assert params["check_measured"] == 11_689_512 + 513_000 and "no longer reproduces" in params["note"]
            assert macs["verdict"] not in ("exact", "rounding", "tolerance", "explained")


LENET_CHECKS = """
id = "lenet_checks"
title = "checks on LeNet-5"
convention = "macs"
""" + CITATION + """
[[rows]]
label = "LeNet-5"
model = "lenet5"
input_size = [32, 32]
values = [
  { quantity = "params", text = "61706", unit = "params", convention = "torchvision" },
  { quantity = "macs", text = "833,040", unit = "macs", check = { says = "twice the count (a typo doubled it)", expression = "2 * measured" } },
  { quantity = "weights", text = "61,706", unit = "params", convention = "paper", check = { says = "the figure counts the biases too", convention = "torchvision", quantity = "params" } },
  { quantity = "output_shape", text = "(6, 28, 28)", unit = "shape", layers = "c1_conv", check = { says = "channels first", axes = [2, 0, 1] } },
  { quantity = "flops", text = "416M", unit = "flops", check = { says = "a wrong guess", expression = "measured * 500" } },
]
"""


def test_a_check_explains_a_row_only_when_its_computation_reproduces_the_print(tmp_path):
    path = tmp_path / "lenet_checks.toml"
    path.write_text(LENET_CHECKS, encoding="utf-8")
    exact, doubled, weights, shape, wrong = reproduce([parse_table(path)])
    assert exact["verdict"] == "exact" and not exact["check"]  # a row its measurement reproduces needs no check
    assert (doubled["verdict"], doubled["check_measured"]) == ("explained", 833_040)
    assert doubled["check"].startswith("twice the count") and "exactly" in doubled["check"]
    assert (weights["verdict"], weights["check_measured"]) == ("explained", 61_706)
    assert (shape["verdict"], shape["check_measured"]) == ("explained", "6x28x28")
    assert wrong["verdict"] == "unexplained" and "no longer reproduces" in wrong["note"]
    assert wrong["check_measured"] == 500 * 416_520 and "does not reproduce" in wrong["check"]


def test_same_ratio_needs_a_common_factor_within_its_tolerance():
    from kbench.papers.checks import common_ratios

    members = [("a", 95.0, 100.0), ("b", 190.1, 200.0), ("c", 285.0, 300.0)]
    assert set(common_ratios(members).values()) == {0.95}
    assert common_ratios(members[:2]) == {}  # two values say nothing about a common factor


# ------------------------------------------------------------------ a user's own table, paper-ready LaTeX

def test_a_users_own_table_file_reproduces_like_a_shipped_one(tmp_path, capsys):
    path = tmp_path / "lenet_checks.toml"
    path.write_text(LENET_CHECKS, encoding="utf-8")
    assert main(["reproduce", str(path), "--format", "csv"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert len(rows) == 5 and rows[0]["source"] == "Author and Author 2025, A paper of our own, in preparation, Table 1"
    assert "5 of 5 printed numbers compared" in captured.err
    assert main(["reproduce", str(path)]) == 0  # markdown: its citation and coverage head its table
    assert "## lenet_checks: checks on LeNet-5\n\nAuthor and Author 2025, A paper of our own" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["reproduce", "missing.toml"], "TABLE: no table file 'missing.toml'"),
    (["reproduce", "no_such_table"], "unknown table 'no_such_table'"),
    (["reproduce", "all", "conv_vs_separable"], "'all' cannot be combined"),
    (["reproduce", "conv_vs_separable", "--format", "html"], "--format"),
])
def test_bad_tables_and_formats_are_one_line_usage_errors(argv, message, tmp_path, capsys):
    out = tmp_path / "never.csv"
    assert main(argv + ["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and not out.exists()


def test_latex_is_booktabs_with_caption_label_math_and_footnotes(capsys):
    assert main(["reproduce", "mobilenet_v1_table6", "resnet_table", "--format", "latex"]) == 0
    latex = capsys.readouterr().out
    assert latex.count("\\toprule") == latex.count("\\bottomrule") == 3  # the summary and two tables
    assert "\\caption{Table 6. MobileNet Width Multiplier: the printed figures (Howard et al. 2017, Table 6)" in latex
    assert "\\label{tab:kbench-mobilenet-v1-table6}" in latex and "\\cmidrule(lr)" in latex
    assert "1.0 MobileNet-224 & 70.6\\% & 569 & 569 & 4.2 & 4.2 \\\\" in latex
    # math as math; architecture tables (models as columns) give kbench's figure where it differs
    assert "$3.8 \\times 10^9$ ($3.9 \\times 10^9$)\\textsuperscript{a}" in latex
    assert "FLOPs, 34-layer; FLOPs, 50-layer: explained:" in latex  # one footnote for the cells it explains
    assert "textbackslash" not in latex and "569000000" not in latex
    assert "truncated (not rounded)" in latex  # the footnote says what the check computed


def test_latex_compiles_with_booktabs(tmp_path, capsys):
    import shutil
    import subprocess

    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed")
    assert main(["reproduce", "mobilenet_v1_table6", "dsnet_imagenet", "--format", "latex"]) == 0
    body = capsys.readouterr().out
    document = tmp_path / "tables.tex"
    document.write_text("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage[utf8]{inputenc}\n"
                        "\\usepackage{booktabs}\n\\usepackage{longtable}\n\\begin{document}\n" + body
                        + "\n\\end{document}\n", encoding="utf-8")
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", document.name], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    assert (tmp_path / "tables.pdf").stat().st_size > 0
