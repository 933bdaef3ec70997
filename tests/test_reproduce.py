"""``kbench reproduce``: verdicts, the report's schema and formats, and --speed on a tiny table.

The default suite reproduces every table once (``reproduce all`` builds the ~70 models the tables
name, about 3 minutes on one CPU core) and checks the single-layer worked examples, LeNet-5,
SqueezeNet's bypass table and the memory table in detail.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from kbench.cli import main
from kbench.papers.loader import REPORT_COLUMNS, load_table, parse_printed, parse_table
from kbench.papers.reproduce import VERDICTS, reproduce, verdict, verdict_counts

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
    assert verdict(120_000_000, 100_000_000, _value("120M", tolerance=0.02, reason="a typo")) == "explained"
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
    total = lenet[("LeNet-5 (lenet5 为例) [all layers (line 90)]", "params")]
    assert (total["reported"], total["measured"], total["verdict"]) == (61706, 61706, "exact")
    assert lenet[("卷积核: 16 kernels of 2×2×3 with bias [with bias (line 100)]", "params")]["measured"] == 208
    assert lenet[("全连接层: 16 inputs, 133 outputs, with bias [line 104]", "params")]["measured"] == 2261
    shapes = [e for e in lenet.values() if e["quantity"] == "output_shape"]
    assert shapes and {e["verdict"] for e in shapes} == {"exact"}


def test_accuracy_is_not_measurable_and_model_size_is_measured(fast_report):
    squeeze = [e for e in fast_report if e["table"] == "squeezenet_bypass"]
    assert {e["verdict"] for e in squeeze if e["quantity"] in ("top1", "top5")} == {"not_measurable"}
    vanilla = next(e for e in squeeze if e["quantity"] == "model_size_mb")
    assert vanilla["verdict"] == "rounding" and round(vanilla["measured"], 2) == 4.76  # 1,248,424 x 4 B in MiB


def test_csv_columns_exactly_and_markdown_grouped_with_counts(tmp_path, capsys):
    out = tmp_path / "report.csv"
    assert main(["reproduce", "conv_vs_separable", "--format", "csv", "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert tuple(rows[0]) == REPORT_COLUMNS and len(rows) == 9
    assert main(["reproduce", "conv_vs_separable", "--format", "csv", "--out", str(out)]) == 2  # exists
    assert main(["reproduce", "conv_vs_separable"]) == 0
    text = capsys.readouterr().out
    assert "## Verdicts" in text and "## conv_vs_separable (002_9ea9a95109966741.txt:7-129)" in text
    assert "exact 9" in text and "| 12.0 " in text  # reported_text as printed
    assert main(["reproduce", "conv_vs_separable", "--format", "latex"]) == 0
    latex = capsys.readouterr().out
    assert "\\begin{longtable}" in latex and "conv\\_vs\\_separable" in latex
    assert main(["reproduce", "conv_vs_separable", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["verdicts"]["exact"] == 9 and len(payload["rows"]) == 9


def test_list_names_every_table(capsys):
    from kbench.papers.loader import table_ids

    assert main(["reproduce", "--list", "--format", "csv"]) == 0
    listed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["table"] for r in listed] == table_ids()


SPEED_TABLE = """
id = "tiny_speed"
title = "two LeNets"
source = "004_f26363fd6359ab30.txt"
lines = [1, 2]
convention = "none"
baseline = "small"

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
    assert [e["verdict"] for e in report] == ["not_measurable", "not_measurable"]
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
    assert sum(payload["verdicts"].values()) == len(payload["rows"]) == 653
    # Every unexplained row was investigated: its table value carries a note saying what was found.
    assert all(r["reason"] for r in payload["rows"] if r["verdict"] == "unexplained")
    # Every number kbench can measure is measured: nothing is left "not compared yet".
    assert not [r["row"] for r in payload["rows"] if r["reason"] and r["reason"].startswith("not compared yet")]
    resnet = next(r for r in payload["rows"] if r["table"] == "dsnet_detail" and r["row"] == "ResNet50: ImageNet1K"
                  and r["quantity"] == "macs")
    assert (resnet["measured"], resnet["verdict"]) == (4_109_364_224, "rounding")


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
    assert counts == {"exact": 8, "rounding": 1, "tolerance": 6, "explained": 18, "not_measurable": 3}
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
