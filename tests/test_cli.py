"""The command line of list, profile and fit-flops: exit codes, one-line errors, output formats.

In-process through ``kbench.cli.main(argv)``; one subprocess test checks that a real ``python -m
kbench`` run prints no traceback.
"""

import json
import subprocess
import sys

import pytest

import kbench
from kbench.cli import main
from kbench.common.humanize import natural_key


# ---- bad input: exit 2, one line on stderr ---------------------------------------------------
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


@pytest.mark.parametrize("argv, message", [
    (["fit-flops", "ucf", "--sizes", "64,abc,96"], "cannot parse input size 'abc'"),
    (["fit-flops", "ucf", "--sizes", "64,64,96"], "at least 3 distinct"),
    (["fit-flops", "ucf", "--sizes", "16,64,96"], "too small"),
    (["fit-flops", "no_such_model", "--sizes", "64,96,128"], "unknown model"),
    (["fit-flops", "ucf"], "--sizes"),
])
def test_cli_fit_flops_bad_input_exits_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_profile_validates_every_model_before_measuring_any(monkeypatch, tmp_path, capsys):
    from kbench.counting import profiling

    def must_not_run(*args, **kwargs):
        raise AssertionError("measured before all requests were validated")

    monkeypatch.setattr(profiling, "profile", must_not_run)
    out = tmp_path / "p.csv"
    # lenet5 takes the option, vgg11 does not: nothing is measured and nothing is written.
    assert main(["profile", "lenet5,vgg11", "--set", "activation=relu", "--format", "csv", "--out", str(out)]) == 2
    assert "unknown option 'activation' for vgg11" in capsys.readouterr().err
    assert not out.exists()


def test_cli_subprocess_bad_input_has_no_traceback():
    result = subprocess.run([sys.executable, "-m", "kbench", "profile", "no_such_model"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]


# ---- list --------------------------------------------------------------------------------------
def test_list_formats(capsys):
    assert main(["list", "--family", "lenet"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["model", "family", "paper", "year", "default_input_shape", "min_input_size",
                                "reported", "params", "reported", "MACs"]
    assert table[2].split()[:2] == ["lenet5", "lenet"]
    assert table[2].split()[-2:] == ["61.71k", "416.52k"]  # the published figures (LeNet-5: 61,706 and 416,520)
    assert main(["list", "--family", "resnet", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [entry["name"] for entry in listed] == sorted(kbench.list_models("resnet"), key=natural_key)
    assert main(["list", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "model,family,paper,year,default_input_shape,min_input_size,reported_params,reported_macs"
    # Published figures as printed (ResNet-50's MACs: torchvision's rounded 4.089G), integers in the CSV.
    assert next(line for line in lines if line.startswith("resnet50,")).endswith(",25557032,4089000000")
    assert len(lines) == 1 + len(kbench.list_models())


# ---- profile -----------------------------------------------------------------------------------
def test_profile_json_and_csv_outputs(tmp_path, capsys):
    assert main(["profile", "lenet5", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)["models"][0]
    assert record["params_trainable"] == 61_706 and record["macs"] == 416_520
    out = tmp_path / "p.csv"
    assert main(["profile", "lenet5,vgg11", "--input-size", "32", "--format", "csv", "--out", str(out)]) == 0
    import pandas as pd

    frame = pd.read_csv(out)
    assert list(frame["model"]) == ["lenet5", "vgg11"]
    for column in ("params", "params_trainable", "params_non_trainable", "params_keras_total", "macs", "flops_tf", "uncounted_ops", "tf_version", "keras_version",
                   "host", "git_commit", "timestamp", "kbench_version"):
        assert column in frame.columns
    assert (frame["status"] == "ok").all()


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


def test_profile_csv_resume_keys_on_the_variant(tmp_path, capsys):
    import pandas as pd

    out = tmp_path / "p.csv"
    assert main(["profile", "lenet5", "--format", "csv", "--out", str(out)]) == 0
    # Same model and size, another variant: a new row; the same variant again: nothing new.
    for _ in range(2):
        assert main(["profile", "lenet5", "--set", "activation=relu", "--format", "csv", "--out", str(out),
                     "--resume"]) == 0
    frame = pd.read_csv(out, keep_default_na=False)
    assert list(frame["variant"]) == ["", '{"activation": "relu"}']


def test_profile_refuses_a_malformed_csv(tmp_path, capsys):
    out = tmp_path / "bad.csv"
    out.write_text("model,input_h\nlenet5,32,extra,fields\n")
    assert main(["profile", "lenet5", "--format", "csv", "--out", str(out), "--resume"]) == 2
    assert "malformed CSV" in capsys.readouterr().err


# ---- fit-flops ---------------------------------------------------------------------------------
def test_cli_fit_flops_json(capsys):
    code = main(["fit-flops", "pagrn_v2", "--sizes", "32,48,32x64", "--counter", "analytic", "--format", "json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["reference"]["corrected"]["a"] == 410530
    assert abs(result["relative_difference_a"]) < 0.03
    assert [tuple(s) for s in result["sizes"]] == [(32, 32), (32, 64), (48, 48)]


def test_cli_fit_flops_table_has_blank_reference_for_other_models(capsys):
    code = main(["fit-flops", "resnet18", "--sizes", "32,64,96", "--counter", "analytic"])
    assert code == 0
    out = capsys.readouterr().out
    assert "fit (kbench MACs)" in out and "audit, corrected" in out
    corrected_line = next(line for line in out.splitlines() if line.startswith("audit, corrected"))
    assert corrected_line.strip() == "audit, corrected"


# ---- params columns, conventions as their tools print them, paper tables ---------------------------
RESNET50_PARAMS = 25_557_032  # torchvision's resnet50: sum(p.numel() for p in model.parameters())
RESNET50_BN_STATISTICS = 53_120  # BN moving mean + variance: 2 x the 26,560 BN channels


def test_params_is_the_papers_count_in_json_csv_and_tables(tmp_path, capsys):
    """The parameter count does not depend on the input size: 64x64 keeps the test fast."""
    import csv

    assert main(["profile", "resnet50", "--input-size", "64", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)["models"][0]
    assert (record["params"], record["params_trainable"], record["params_non_trainable"],
            record["params_keras_total"]) == (RESNET50_PARAMS, RESNET50_PARAMS, RESNET50_BN_STATISTICS,
                                              RESNET50_PARAMS + RESNET50_BN_STATISTICS)
    out = tmp_path / "p.csv"
    assert main(["profile", "resnet50", "--input-size", "64", "--format", "csv", "--out", str(out)]) == 0
    with open(out, newline="") as handle:
        (row,) = csv.DictReader(handle)
    assert row["params"] == str(RESNET50_PARAMS) and row["params_keras_total"] == "25610152"
    capsys.readouterr()
    for fmt in ("table", "markdown"):
        assert main(["profile", "resnet50", "--input-size", "64", "--format", fmt]) == 0
        text = capsys.readouterr().out
        assert ("25.56M" if fmt == "table" else "25.56") in text and "25.61" not in text, text


def test_a_convention_prints_as_its_tool_prints(capsys):
    """mmpretrain's ResNet-50: 'Flops: 4.109G' (mmengine, extract_feat: the backbone), in MACs."""
    assert main(["profile", "resnet50", "--convention", "mmengine", "--part", "backbone"]) == 0
    out = capsys.readouterr().out
    assert "mmengine MACs" in out and "4.109G" in out


def test_latex_and_markdown_are_paper_tables(capsys):
    assert main(["profile", "resnet18,resnet50", "--format", "latex"]) == 0
    latex = capsys.readouterr().out
    for part in ("\\begin{table}", "\\caption{Parameters", "\\label{tab:kbench-profile}", "\\toprule", "\\midrule",
                 "\\bottomrule", "model & input & params (M) & MACs (G)", "resnet18 & 224x224 & 11.69 & 1.81",
                 "resnet50 & 224x224 & 25.56 & 4.09"):
        assert part in latex, (part, latex)
    assert main(["profile", "resnet18", "--input-size", "64", "--format", "markdown",
                 "--columns", "model,params,params_keras_total,activations"]) == 0
    markdown = capsys.readouterr().out.splitlines()
    assert [c.strip() for c in markdown[0].strip("|").split("|")] == [
        "model", "params (M)", "params (Keras total) (M)", "activations (elements) (K)"]


def test_profile_in_worker_processes_gives_the_same_rows_in_order(tmp_path, capsys):
    """--jobs 2: two spawned workers; the rows, their order and every count are those of one process."""
    import csv

    models = "lenet5,resnet18,squeezenet1_1,mobilenet_v2"
    rows = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"p{jobs}.csv"
        assert main(["profile", models, "--input-size", "64", "--num-classes", "10", "--format", "csv",
                     "--out", str(out), "--jobs", jobs]) == 0
        with open(out, newline="") as handle:
            rows[jobs] = list(csv.DictReader(handle))
    counts = ("model", "status", "error", "params", "params_keras_total", "macs", "flops_tf", "mem_access",
              "activations", "uncounted_ops", "input_bytes")
    assert [[r[c] for c in counts] for r in rows["2"]] == [[r[c] for c in counts] for r in rows["1"]]
    assert [r["model"] for r in rows["2"]] == models.split(",")
