"""Profiling and sweeping the user's own model: a Functional, Sequential or subclassed
``keras.Model``, a saved ``.keras`` file and a ``module:factory``, from the CLI and from Python.

Every count is checked against a hand count of a tiny network (8x8x3 input):

* ``Conv2D(w, 3)`` (valid) -> 6x6xw: 6*6*w*27 MACs, 27w + w params;
* ``GlobalAveragePooling2D``: no MACs, no params;
* ``Dense(k)`` on w features: w*k MACs, w*k + k params.

For w = 4, k = 2: 3888 + 8 = 3896 MACs and 112 + 10 = 122 params.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import pytest

import kbench
from kbench.cli import main
from kbench.errors import UsageError

from fresh_process import kbench_in_fresh_process

REPO = Path(__file__).resolve().parent.parent


def hand_counts(width=4, classes=2, size=8):
    positions = (size - 2) ** 2
    return {"params": 27 * width + width + width * classes + classes,
            "macs": positions * width * 27 + width * classes}


def functional(width=4, classes=2, size=8):
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(width, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="fc")(x), name="tiny_functional")


def sequential(with_input=False):
    layers = [keras.layers.Conv2D(4, 3, name="conv"), keras.layers.GlobalAveragePooling2D(name="pool"),
              keras.layers.Dense(2, name="fc")]
    return keras.Sequential(([keras.Input((8, 8, 3))] if with_input else []) + layers, name="tiny_sequential")


class Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(4, 3)
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.fc = keras.layers.Dense(2)

    def call(self, x):
        return self.fc(self.pool(self.conv(x)))


FACTORY_SOURCE = textwrap.dedent('''
    import keras

    def build(width=4, input_shape=(8, 8, 3), num_classes=2):
        inputs = keras.Input(input_shape)
        x = keras.layers.Conv2D(width, 3)(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(num_classes)(x))

    def fixed():
        return build()

    def not_a_model():
        return 42
''')


@pytest.fixture
def factory_module(tmp_path, monkeypatch):
    """``tiny_factory:build`` importable (as a user's module in the working directory is)."""
    (tmp_path / "tiny_factory.py").write_text(FACTORY_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield "tiny_factory"
    sys.modules.pop("tiny_factory", None)


@pytest.fixture
def saved_model(tmp_path):
    path = tmp_path / "tiny.keras"
    functional().save(path)
    return str(path)


def run_json(capsys, *argv):
    assert main(["profile", *argv, "--format", "json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)["models"]
    return record


# ----------------------------------------------------------------------------- Python API

@pytest.mark.parametrize("make, shape", [(functional, None), (lambda: sequential(True), None),
                                         (sequential, (8, 8, 3)), (Subclassed, (8, 8, 3))],
                         ids=["functional", "sequential", "unbuilt-sequential", "subclassed"])
def test_profile_any_keras_model_matches_hand_counts(make, shape):
    record = kbench.profile(make(), input_shape=shape)
    assert record["params"] == hand_counts()["params"] == 122
    assert record["macs"] == hand_counts()["macs"] == 3896
    assert record["family"] == "user" and record["input_shape"] == [8, 8, 3]


def test_per_layer_of_sequential_and_subclassed_sum_to_totals():
    rows = kbench.profile(sequential(), input_shape=(8, 8, 3), per_layer=True)["per_layer"]
    assert {r["name"]: r["macs"] for r in rows if r["macs"]} == {"conv": 3888, "fc": 8}
    sub = kbench.profile(Subclassed(name="net"), input_shape=(8, 8, 3), per_layer=True)
    assert [(r["name"], r["macs"]) for r in sub["per_layer"] if r["macs"]] == [("net", 3896)]


def test_subclassed_model_counts_come_from_its_recorded_layer_calls():
    """Activations, memory access and the conventions walk the layers a subclassed model calls."""
    record = kbench.profile(Subclassed(name="net"), input_shape=(8, 8, 3))
    assert record["activations"] == 6 * 6 * 4 + 2  # the conv's and the dense layer's outputs
    conv = 8 * 8 * 3 + 6 * 6 * 4 + 27 * 4   # input read, output written, kernel read
    pool, fc = 6 * 6 * 4 + 4, 4 + 2 + 4 * 2
    assert record["mem_access"] == conv + pool + fc


def test_input_of_any_rank_in_python():
    """A sequence model (length 10, 3 channels): Conv1D(4, 3) -> 8x4, then Dense(2) on 4 features."""
    inputs = keras.Input((10, 3))
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.Conv1D(4, 3, name="conv")(inputs))
    record = kbench.profile(keras.Model(inputs, keras.layers.Dense(2)(x)))
    assert record["input_shape"] == [10, 3]
    assert record["macs"] == 8 * 4 * 3 * 3 + 4 * 2
    assert record["params"] == 3 * 3 * 4 + 4 + 4 * 2 + 2


def test_model_without_input_shape_asks_for_one():
    with pytest.raises(UsageError, match="declares no input shape.*input_shape"):
        kbench.profile(Subclassed())
    with pytest.raises(UsageError, match="declares no input shape"):
        kbench.profile(sequential())


def test_fixed_input_shape_is_used_and_conflicts_are_errors():
    assert kbench.profile(functional(), input_shape=(8, 8))["input_shape"] == [8, 8, 3]
    with pytest.raises(UsageError, match="conflicts with model 'tiny_functional'.*8x8x3"):
        kbench.profile(functional(), input_shape=(16, 16))
    with pytest.raises(UsageError, match="takes no builder options"):
        kbench.profile(functional(), width=8)


def test_open_input_dimensions_take_the_input_size():
    inputs = keras.Input((None, None, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    assert kbench.profile(model, input_shape=(8, 8))["macs"] == 3896
    assert kbench.profile(model, input_shape=(10, 10))["macs"] == hand_counts(size=10)["macs"]
    with pytest.raises(UsageError, match="open dimensions"):
        kbench.profile(model)


def test_python_api_takes_saved_files_and_factories(saved_model, factory_module):
    assert kbench.profile(saved_model)["macs"] == 3896
    record = kbench.profile(f"{factory_module}:build", width=8, num_classes=5)
    assert (record["params"], record["macs"]) == tuple(hand_counts(8, 5).values())
    assert record["model"] == "tiny_factory:build" and record["variant"] == {"width": 8}


# ----------------------------------------------------------------------------- CLI

def test_cli_profiles_a_saved_model(capsys, saved_model):
    record = run_json(capsys, saved_model)
    assert (record["params"], record["macs"]) == (122, 3896)
    assert record["model"] == saved_model


def test_cli_input_size_takes_channels(capsys, factory_module):
    record = run_json(capsys, f"{factory_module}:build", "--input-size", "10,10,2")
    assert record["input_shape"] == [10, 10, 2]
    assert record["macs"] == 8 * 8 * 4 * 9 * 2 + 4 * 2


def test_cli_profiles_a_factory_with_set_input_size_and_classes(capsys, factory_module):
    record = run_json(capsys, f"{factory_module}:build", "--set", "width=8", "--input-size", "10",
                      "--num-classes", "3")
    assert (record["params"], record["macs"]) == tuple(hand_counts(8, 3, size=10).values())
    assert record["input_shape"] == [10, 10, 3]


def test_cli_csv_rows_carry_the_selector_text(tmp_path, capsys, saved_model, factory_module):
    out = tmp_path / "p.csv"
    assert main(["profile", f"{saved_model},{factory_module}:build", "--format", "csv", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [(r["model"], r["family"], r["macs"]) for r in rows] == [
        (saved_model, "user", "3896"), ("tiny_factory:build", "user", "3896")]


@pytest.mark.parametrize("argv, needle", [
    (["missing.keras"], "no saved model at 'missing.keras'"),
    (["tiny_factory:nope"], "has no callable 'nope'"),
    (["no_such_module_xyz:build"], "cannot import 'no_such_module_xyz'"),
    (["tiny_factory:not_a_model"], "returned int, not a keras.Model"),
    (["tiny_factory:build", "--set", "depth=3"], "unknown option 'depth' for tiny_factory:build; allowed: width"),
    (["tiny_factory:fixed", "--num-classes", "3"], "fixes its own outputs"),
    (["tiny_factory:fixed", "--input-size", "16"], "conflicts with model 'tiny_factory:fixed'"),
    (["tiny_factory:build", "--set", "input_shape=[8,8,3]"], "use --input-size"),
    (["tiny_factory:build", "--set", "width='wide'"], "cannot build tiny_factory:build with {'width': 'wide'}"),
])
def test_cli_bad_own_model_exits_2_with_one_line(capsys, factory_module, argv, needle):
    assert main(["profile", *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_sweep_measures_a_saved_model_and_a_factory(tmp_path, saved_model, factory_module):
    out = tmp_path / "s.csv"
    argv = ["sweep", f"{saved_model},{factory_module}:build", "--set", "width=4", "--batch-sizes", "1",
            "--modes", "infer", "--warmup", "0", "--iters", "2", "--out", str(out),
            "--profile-cache", str(tmp_path / "cache")]
    # --set applies to every model: a saved model takes none, so that is refused up front.
    assert main(argv) == 2 and not out.exists()
    argv[2:4] = []
    assert main(argv) == 0
    rows = list(csv.DictReader(out.open()))
    assert [(r["model"], r["status"], r["macs"], r["params_trainable"]) for r in rows] == [
        (saved_model, "ok", "3896", "122"), ("tiny_factory:build", "ok", "3896", "122")]
    assert main([*argv, "--resume"]) == 0  # the selector text is the resume key: nothing to add
    assert len(list(csv.DictReader(out.open()))) == 2


@pytest.mark.slow  # a second real sweep; the CLI sweep above covers the same workers
def test_sweep_models_takes_a_keras_model_object(tmp_path):
    from kbench.running.sweep import sweep_models

    out = tmp_path / "s.csv"
    # No Input layer: built at input_size before it is saved for the workers, timed as Functional.
    result = sweep_models(sequential(), input_size=(8, 8), out=str(out), batch_sizes=[2], modes=["infer", "train"],
                          warmup=0, iters=2, profile_cache=str(tmp_path / "cache"))
    assert [(r["model"], r["mode"], r["status"], r["macs"]) for r in result.rows] == [
        ("tiny_sequential", "infer", "ok", 3896), ("tiny_sequential", "train", "ok", 3896)]
    with pytest.raises(UsageError, match="declares no input shape"):
        sweep_models(Subclassed(), out=str(tmp_path / "t.csv"), batch_sizes=[1], modes=["infer"])


# ----------------------------------------------------------------------------- saved zoo models

def test_import_kbench_registers_the_zoo_layers_for_load_model(tmp_path):
    """A ShuffleNet (ChannelShuffle, ChannelSplit layers) saved here loads in a fresh process
    that imports only kbench and Keras, and kbench.load_model does the same."""
    path = tmp_path / "shufflenet.keras"
    model = kbench.build("shufflenet_v2_x0_5", input_shape=(32, 32, 3), num_classes=10)
    model.save(path)
    code = textwrap.dedent(f"""
        import sys
        import kbench, keras
        assert "architectures" in sys.modules
        model = keras.saving.load_model({str(path)!r})
        assert kbench.load_model({str(path)!r}).count_params() == model.count_params()
        print(model.count_params())
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={**__import__("os").environ, "PYTHONPATH": str(REPO)}, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) == model.count_params()


# ----------------------------------------------------------------------------- registered subclassed models

SUBCLASSED_SOURCE = textwrap.dedent('''
    import keras

    @keras.saving.register_keras_serializable(package="kbench_tests")
    class TinyNet(keras.Model):
        """Conv2D(4, 3) (valid) -> global average pool -> Dense(2): the hand counts of this file."""

        def __init__(self, width=4, classes=2, **kwargs):
            super().__init__(**kwargs)
            self.width, self.classes = width, classes
            self.conv = keras.layers.Conv2D(width, 3)
            self.pool = keras.layers.GlobalAveragePooling2D()
            self.fc = keras.layers.Dense(classes)

        def call(self, x):
            return self.fc(self.pool(self.conv(x)))

        def get_config(self):
            return {"width": self.width, "classes": self.classes, "name": self.name}
''')


def _subclassed_module(directory: Path, name: str):
    """``name`` (defining the registered ``TinyNet``) written to ``directory`` and imported from there."""
    import importlib

    (directory / f"{name}.py").write_text(SUBCLASSED_SOURCE)
    sys.path.insert(0, str(directory))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(directory))


def _saved_tiny_net(module, path: Path) -> str:
    model = module.TinyNet(name="tiny_net")
    model(keras.ops.zeros((1, 8, 8, 3)))  # built at 8x8x3: the saved file records that shape
    model.save(path)
    return str(path)


def test_saved_subclassed_model_profiles_exactly_with_its_module_imported(tmp_path):
    """A fresh ``kbench profile`` of a saved registered subclassed model imports the module the file
    names from the working directory (Keras' safe mode on), and counts it by hand."""
    module = _subclassed_module(tmp_path, "tiny_net_cwd")
    try:
        saved = _saved_tiny_net(module, tmp_path / "tiny.keras")
    finally:
        sys.modules.pop("tiny_net_cwd", None)
    # Elsewhere (first: the process has not imported the module yet), the module is not found: one
    # line that says how to name it.
    (code, _, err), (found_code, out, found_err) = kbench_in_fresh_process(
        (["profile", saved], tmp_path.parent), (["profile", saved, "--format", "json"], tmp_path)).results
    assert code == 2 and err.count("\n") == 1
    assert "Keras does not know class 'TinyNet'" in err and "--import MODULE" in err
    assert found_code == 0, found_err[-2000:]
    (record,) = json.loads(out)["models"]
    assert (record["params"], record["macs"]) == (122, 3896) == tuple(hand_counts().values())
    assert record["activations"] == 6 * 6 * 4 + 2 and record["input_shape"] == [8, 8, 3]


def test_import_names_the_module_of_a_class_saved_from_a_script(tmp_path):
    """A model saved from a script records its class in ``__main__``: ``--import`` names the module
    that now defines (and registers) it."""
    (tmp_path / "nets.py").write_text(SUBCLASSED_SOURCE)
    script = SUBCLASSED_SOURCE + textwrap.dedent('''
        model = TinyNet(name="tiny_net")
        model(keras.ops.zeros((1, 8, 8, 3)))
        model.save("from_script.keras")
    ''')
    (tmp_path / "save_it.py").write_text(script)
    done = subprocess.run([sys.executable, "save_it.py"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (code, _, err), (code_import, out, err_import), (code_missing, _, err_missing) = kbench_in_fresh_process(
        (["profile", "from_script.keras"], tmp_path),
        (["profile", "from_script.keras", "--import", "nets", "--format", "json"], tmp_path),
        (["profile", "from_script.keras", "--import", "no_such_nets"], tmp_path)).results
    assert code == 2 and "Keras does not know class" in err
    assert code_import == 0, err_import[-2000:]
    assert json.loads(out)["models"][0]["macs"] == 3896
    assert code_missing == 2 and "cannot import 'no_such_nets' for --import" in err_missing
    assert err_missing.count("\n") == 1


def test_sweep_measures_a_saved_subclassed_model_and_the_object(tmp_path, monkeypatch):
    """The sweep's workers import the model's module: from the working directory for the saved
    file, and from its file for the object (whose module only this process has on its path)."""
    monkeypatch.chdir(tmp_path)
    saved = _saved_tiny_net(_subclassed_module(tmp_path, "tiny_net_sweep"), tmp_path / "tiny.keras")
    elsewhere = tmp_path / "lib"
    elsewhere.mkdir()
    module = _subclassed_module(elsewhere, "tiny_net_elsewhere")
    model = module.TinyNet(name="tiny_object")
    model(keras.ops.zeros((1, 8, 8, 3)))
    try:
        result = kbench.sweep_models([saved, model], out=str(tmp_path / "s.csv"), batch_sizes=[1], modes=["infer"],
                                     warmup=0, iters=1, rounds=1, profile_cache=str(tmp_path / "cache"))
    finally:
        for name in ("tiny_net_sweep", "tiny_net_elsewhere"):
            sys.modules.pop(name, None)
    assert [(r["model"], r["status"], r["macs"], r["params_trainable"]) for r in result.rows] == [
        (saved, "ok", 3896, 122), ("tiny_object", "ok", 3896, 122)], [r["error"] for r in result.rows]
