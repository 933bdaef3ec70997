"""Issue 2: exact parameter counts, MACs against the papers, the profiler's traps, the CLI contract."""

import json
import subprocess
import sys

import keras
import pytest

import kbench
from kbench.cli import main
from kbench.macs import count_macs
from kbench.profiling import profile_model


@pytest.fixture(autouse=True)
def _fresh_session():
    yield
    keras.backend.clear_session()


def _trainable(model):
    return sum(int(keras.ops.size(w)) for w in model.trainable_weights)


# ---- parameter counts, to the unit ---------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("lenet5", 61_706),
    ("vgg16", 138_357_544),
    ("vgg19", 143_667_240),
    ("vgg11", 132_863_336),
    ("vgg13", 133_047_848),
    ("vgg16_bn", 138_365_992),
    ("resnet18", 11_689_512),
    ("resnet34", 21_797_672),
    ("resnet50", 25_557_032),
    ("resnet101", 44_549_160),
    ("resnet152", 60_192_808),
    ("resnet50_v1c", 25_576_264),
])
def test_trainable_parameters_match_references(name, expected):
    assert _trainable(kbench.build(name)) == expected


def test_resnet50_in_keras_layout_equals_keras_applications():
    ours = kbench.build("resnet50", stride_in_1x1=True, conv_bias=True)
    reference = keras.applications.ResNet50(weights=None)
    assert ours.count_params() == reference.count_params() == 25_636_712
    assert _trainable(ours) == _trainable(reference)


@pytest.mark.parametrize("name, app", [("vgg16", "VGG16"), ("vgg19", "VGG19")])
def test_vgg_equals_keras_applications(name, app):
    reference = getattr(keras.applications, app)(weights=None)
    assert kbench.build(name).count_params() == reference.count_params()


def test_num_classes_and_input_size_are_free():
    model = kbench.build("resnet18", input_shape=(96, 128, 3), num_classes=7)
    assert model.output.shape[-1] == 7
    assert model.input.shape[1:] == (96, 128, 3)


# ---- MACs against the papers ---------------------------------------------------------------
@pytest.mark.parametrize("depth, paper_gmacs", [(18, 1.8), (34, 3.6), (50, 3.8)])
def test_resnet_macs_match_paper_table_in_original_layout(depth, paper_gmacs):
    model = kbench.build(f"resnet{depth}", stride_in_1x1=True)
    record = profile_model(model, (224, 224, 3))
    assert record["macs"] == pytest.approx(paper_gmacs * 1e9, rel=0.02)


def test_vgg16_macs_conv_only_and_with_classifier():
    model = kbench.build("vgg16")
    record = profile_model(model, (224, 224, 3), per_layer=True)
    conv_only = sum(r["macs"] for r in record["per_layer"] if r["type"] == "Conv2D")
    assert conv_only == pytest.approx(15.3e9, rel=0.02)
    assert record["macs"] == pytest.approx(15.47e9, rel=0.02)
    assert record["macs"] == 15_470_264_320  # reference_numbers.md, exact
    assert record["params_trainable"] == 138_357_544


def test_resnet50_v15_macs_equal_torchvision_count():
    record = kbench.profile("resnet50")
    assert record["macs"] == 4_089_184_256
    assert 1.0 <= record["flops_tf"] / (2 * record["macs"]) <= 1.06


# ---- the profiler's traps ------------------------------------------------------------------
def _grouped_model(groups):
    inputs = keras.Input((14, 14, 32))
    x = keras.layers.Conv2D(64, 3, padding="same", groups=groups, use_bias=False, name="gconv")(inputs)
    return keras.Model(inputs, x)


@pytest.mark.parametrize("groups", [1, 2, 4, 32])
def test_grouped_convolution_is_counted_exactly(groups):
    record = profile_model(_grouped_model(groups), (14, 14, 32))
    expected_macs = 14 * 14 * 64 * 3 * 3 * 32 // groups
    assert record["macs"] == expected_macs
    assert record["flops_by_op"]["Conv2D"] == 2 * expected_macs
    assert "StatefulPartitionedCall" not in record["uncounted_ops"]


def test_unresolved_function_call_is_reported(monkeypatch):
    from kbench import profiling as profile_module

    monkeypatch.setattr(profile_module._GraphCounter, "_resolve", lambda self, fname, node: None)
    record = profile_model(_grouped_model(4), (14, 14, 32))
    assert record["uncounted_ops"].get("StatefulPartitionedCall") == 1
    assert record["macs"] == 0


def test_unknown_dimension_is_an_error_not_zero():
    with pytest.raises(RuntimeError, match="could not count"):
        profile_model(_grouped_model(1), (None, None, 32))


def test_activations_without_a_rule_are_listed():
    record = kbench.profile("lenet5")
    assert record["uncounted_ops"] == {"Tanh": 4}


def test_analytic_counter_flags_unknown_weighted_layers():
    class Mystery(keras.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1], 4))

        def call(self, x):
            return keras.ops.matmul(x, self.w)

    inputs = keras.Input((8,))
    model = keras.Model(inputs, Mystery(name="mystery")(inputs))
    assert count_macs(model)["unknown_layers"] == ["mystery (Mystery)"]


# ---- registry and CLI contract -------------------------------------------------------------
def test_unknown_model_suggests_close_names():
    with pytest.raises(kbench.UnknownModelError, match="did you mean 'resnet50'"):
        kbench.build("resnet05")


def test_list_models_by_family():
    assert kbench.list_models("resnet") == sorted(["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnet50_v1c"])
    with pytest.raises(kbench.UsageError, match="unknown family"):
        kbench.list_models("nope")


@pytest.mark.parametrize("argv, fragment", [
    (["profile", "resnt50"], "unknown model 'resnt50'"),
    (["profile", "lenet5", "--input-size", "16"], "input size 16x16 is too small for lenet5"),
    (["profile", "lenet5", "--input-size", "0"], "--input-size '0' must be"),
    (["profile", "lenet5", "--input-size", "abc"], "--input-size 'abc' must be"),
    (["profile", "lenet5", "--set", "widht=2"], "unknown option 'widht' for lenet5"),
    (["profile", "lenet5", "--set", "noequals"], "must look like KEY=VALUE"),
    (["profile", "lenet5", "--format", "xml"], "invalid choice: 'xml'"),
    (["list", "--family", "nope"], "unknown family 'nope'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_input_exits_2_with_one_line(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err
    assert err.count("\n") == 1 and err.startswith("kbench: error:")


def test_profile_json_and_csv_outputs(tmp_path, capsys):
    assert main(["profile", "lenet5", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["params_trainable"] == 61_706 and record["macs"] == 416_520
    out = tmp_path / "p.csv"
    assert main(["profile", "lenet5,vgg11", "--input-size", "32", "--format", "csv", "--out", str(out)]) == 0
    import pandas as pd

    frame = pd.read_csv(out)
    assert list(frame["model"]) == ["lenet5", "vgg11"]
    for column in ("params_total", "macs", "flops_tf", "uncounted_ops", "tf_version", "keras_version",
                   "host", "git_commit", "timestamp", "kbench_version"):
        assert column in frame.columns
    assert (frame["status"] == "ok").all()


def test_per_layer_table_sums_to_totals(capsys):
    assert main(["profile", "resnet18", "--input-size", "64", "--per-layer", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert sum(r["macs"] for r in record["per_layer"]) == record["macs"]
    assert sum(r["flops_tf"] for r in record["per_layer"]) == record["flops_tf"]
    assert sum(r["params"] for r in record["per_layer"]) == record["params_total"]


def test_cli_subprocess_bad_input_has_no_traceback():
    result = subprocess.run([sys.executable, "-m", "kbench", "profile", "no_such_model"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]


def test_dilated_convolution_padding_is_not_counted_as_macs():
    # Rate 3 does not divide 8: TF pads the map through SpaceToBatchND and convolves the padding.
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(6, 3, padding="same", dilation_rate=3, use_bias=False, name="atrous")(inputs)
    record = profile_model(keras.Model(inputs, x), (8, 8, 4))
    assert record["macs"] == 8 * 8 * 6 * 3 * 3 * 4
    assert record["flops_tf"] > 2 * record["macs"]  # the profiler's count includes the padding
    # ... and the padding's share is reported apart: 2 x (padded outputs - real outputs) x k*k*Cin*Cout.
    padded_outputs = 9 * 3 * 3  # SpaceToBatchND: 3x3 = 9 phases, each producing a 3x3 (= ceil(8/3)) output
    assert record["flops_tf_dilation_padding"] == 2 * (padded_outputs - 8 * 8) * 6 * 3 * 3 * 4


def test_profile_csv_resume_appends_only_missing_models(tmp_path, capsys):
    import pandas as pd

    out = tmp_path / "p.csv"
    assert main(["profile", "lenet5", "--format", "csv", "--out", str(out)]) == 0
    # Without --resume an existing report is never appended to (exit 2, file untouched).
    before = out.read_bytes()
    assert main(["profile", "lenet5,vgg11", "--input-size", "32", "--format", "csv", "--out", str(out)]) == 2
    assert out.read_bytes() == before
    assert main(["profile", "lenet5,vgg11", "--input-size", "32", "--format", "csv", "--out", str(out), "--resume"]) == 0
    assert list(pd.read_csv(out)["model"]) == ["lenet5", "vgg11"]


def test_profile_refuses_a_malformed_csv(tmp_path, capsys):
    out = tmp_path / "bad.csv"
    out.write_text("model,input_h\nlenet5,32,extra,fields\n")
    assert main(["profile", "lenet5", "--format", "csv", "--out", str(out), "--resume"]) == 2
    assert "malformed CSV" in capsys.readouterr().err
