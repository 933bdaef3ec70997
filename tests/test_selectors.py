"""Model selectors (``kbench.models.selectors``): globs, mixed lists, ``@file`` lists, user models; and
``--config`` presets addressed by name."""

from __future__ import annotations

import fnmatch

import pytest

import kbench
from kbench.models import selectors
from kbench.cli import main
from kbench.errors import UsageError


def test_glob_matches_registered_names():
    assert selectors.expand("resnet*") == fnmatch.filter(kbench.list_models(), "resnet*")
    assert "resnet18" in selectors.expand("resnet*") and "resnext50_32x4d" not in selectors.expand("resnet*")
    assert selectors.expand("lenet?") == ["lenet5"]


def test_mixed_list_keeps_order_and_drops_duplicates():
    shufflenets = kbench.list_models("shufflenet")
    assert selectors.expand("family:shufflenet,lenet5") == shufflenets + ["lenet5"]
    assert selectors.expand("lenet5,family:shufflenet,lenet5") == ["lenet5"] + shufflenets
    assert selectors.expand(["lenet5", "vgg11"]) == ["lenet5", "vgg11"]


def test_model_list_file_with_comments(tmp_path):
    listed = tmp_path / "models.txt"
    listed.write_text("# my models\nlenet5\n\nvgg1?  # a pattern\nalexnet, lenet5\n")
    assert selectors.expand(f"@{listed}") == ["lenet5", *fnmatch.filter(kbench.list_models(), "vgg1?"), "alexnet"]
    assert selectors.expand(f"resnet18,@{listed}")[:2] == ["resnet18", "lenet5"]


def test_user_models_pass_through_untouched():
    assert selectors.expand("my_pkg.nets:build,x/y.keras,lenet5") == ["my_pkg.nets:build", "x/y.keras", "lenet5"]
    assert selectors.expand("family:lenet") == ["lenet5"]  # never a module named 'family'


@pytest.mark.parametrize("selector, needle", [
    ("zzz*", "pattern 'zzz*' matches no registered model"),
    ("lenet5,resnt18", "unknown model 'resnt18'; did you mean 'resnet18'"),
    ("family:nope", "unknown family 'nope'"),
    ("@", "'@' must be followed by a file"),
    ("@/nonexistent/models.txt", "cannot read model list @/nonexistent/models.txt"),
    (" , ", "no model named"),
])
def test_unmatched_selectors_are_usage_errors(selector, needle):
    with pytest.raises(UsageError, match=__import__("re").escape(needle)):
        selectors.expand(selector)


def test_empty_and_self_including_lists(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(UsageError, match="names no model"):
        selectors.expand(f"@{empty}")
    loop = tmp_path / "loop.txt"
    loop.write_text(f"lenet5\n@{loop}\n")
    with pytest.raises(UsageError, match="includes itself"):
        selectors.expand(f"@{loop}")


@pytest.mark.parametrize("command", ["profile", "sweep"])
def test_commands_exit_2_on_an_unmatched_selector(capsys, tmp_path, command):
    out = tmp_path / "out.csv"
    assert main([command, "nomatch*", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "pattern 'nomatch*' matches no registered model" in err and err.count("\n") == 1
    assert not out.exists()


def test_sweep_takes_globs_and_lists_like_profile(tmp_path):
    from kbench.cli import build_parser
    from kbench.commands.sweep import build_spec

    listed = tmp_path / "m.txt"
    listed.write_text("lenet5\n")
    spec = build_spec(build_parser().parse_args(["sweep", f"vgg1?,@{listed}", "--out", str(tmp_path / "s.csv")]))
    assert spec.models == [*fnmatch.filter(kbench.list_models(), "vgg1?"), "lenet5"]


# ----------------------------------------------------------------------------- --config presets

def test_config_presets_by_name_from_any_directory(tmp_path, monkeypatch):
    from kbench.cli import build_parser
    from kbench.commands.sweep import build_spec, preset_names

    assert {"nightly", "full"} <= set(preset_names())
    monkeypatch.chdir(tmp_path)  # not the repository root
    for name in ("nightly", "full"):
        spec = build_spec(build_parser().parse_args(["sweep", "--config", name, "--out", str(tmp_path / "s.csv")]))
        assert spec.models
    own = tmp_path / "mine.toml"
    own.write_text('models = "lenet5"\n')
    assert build_spec(build_parser().parse_args(["sweep", "--config", str(own)])).models == ["lenet5"]


def test_unknown_config_preset_lists_the_presets(capsys):
    from kbench.commands.sweep import preset_names

    assert main(["sweep", "--config", "nightlyy"]) == 2
    err = capsys.readouterr().err
    assert f"--config 'nightlyy' is neither a file nor a preset; presets: {', '.join(preset_names())}" in err
