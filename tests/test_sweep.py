"""``kbench sweep``: rows and columns, resume after a kill, error/oom/timeout rows, bad input,
other backends, the profile cache. Tiny models and few iterations: these test the harness, not
the numbers (no assertion here depends on how fast the machine is)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbench.cli import main
from sweep_processes import kill_sweep_after_first_row

# The public contract (the README's CSV columns), written out here on purpose: the test
# must fail if the module's column list drifts from it.
REQUIRED = (
    "run_id timestamp model family input_h input_w batch_size mode backend precision jit status error "
    "samples_per_s latency_ms_p50 latency_ms_p90 latency_ms_p99 latency_ms_std compile_s peak_mem_mb "
    "params_trainable macs flops_tf achieved_tflops mfu device device_kind host kbench_version tf_version "
    "keras_version backend_version git_commit"
).split()
KEY = ["model", "input_h", "input_w", "variant", "batch_size", "mode", "backend", "precision", "jit"]
FAST = ["--warmup", "1", "--iters", "3", "--no-progress"]


@pytest.fixture(scope="session")
def profile_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("profile-cache"))


def sweep(args, cache):
    return main(["sweep", *args, "--profile-cache", cache])


def read(path):
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False, dtype=str)


@pytest.fixture(scope="module")
def two_model_sweep(tmp_path_factory, profile_cache):
    out = tmp_path_factory.mktemp("sweep") / "two.csv"
    code = sweep(["--models", "lenet5,resnet18", "--input-size", "32", "--batch-sizes", "1,2",
                  "--modes", "infer,train", "--no-jit", "--out", str(out), *FAST], profile_cache)
    return code, out


def test_two_models_rows_and_columns(two_model_sweep):
    code, out = two_model_sweep
    assert code == 0
    df = read(out)
    assert list(df.columns[: len(REQUIRED)]) == REQUIRED
    assert len(df) == 8
    assert set(df["status"]) == {"ok"}, df[["model", "batch_size", "mode", "error"]].to_string()
    assert not df.duplicated(KEY).any()
    assert sorted(zip(df["model"], df["batch_size"], df["mode"])) == sorted(
        (m, b, mode) for m in ("lenet5", "resnet18") for b in ("1", "2") for mode in ("infer", "train"))
    num = df[["samples_per_s", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99", "latency_ms_std",
              "compile_s", "peak_mem_mb", "cv"]].astype(float)
    assert (num["samples_per_s"] > 0).all() and (num["compile_s"] > 0).all() and (num["peak_mem_mb"] > 0).all()
    assert (num["latency_ms_p50"] <= num["latency_ms_p90"]).all() and (num["latency_ms_p90"] <= num["latency_ms_p99"]).all()
    assert (df["n_iters"] == "3").all() and (df["warmup"] == "1").all()
    assert (df["rounds"] == "5").all()  # the default: 5 rounds of --iters steps
    for _, row in df.iterrows():
        values = [float(v) for v in row["samples_per_s_rounds"].split(";")]
        assert len(values) == 5 and float(row["samples_per_s"]) == pytest.approx(sorted(values)[2], rel=1e-5)
        assert 0 <= float(row["samples_per_s_iqr"]) <= max(values) - min(values) + 1e-9
        assert row["other_cpu_frac"] == "" or 0 <= float(row["other_cpu_frac"]) <= 1
    assert df["run_id"].nunique() == 1
    for col in ("device", "device_kind", "host", "kbench_version", "tf_version", "keras_version", "backend_version", "timestamp"):
        assert (df[col] != "").all(), col
    assert (df["device"] == "cpu").all() and (df["mfu"] == "").all()  # no CPU peak -> no MFU


def test_flops_and_achieved_tflops(two_model_sweep):
    _, out = two_model_sweep
    df = read(out)
    lenet = df[df["model"] == "lenet5"]
    assert (lenet["macs"] == "416520").all()  # the LeNet-5 count documented in architectures/lenet.py
    assert (lenet["params_trainable"] == "61706").all()
    for _, row in df.iterrows():
        flops, sps = float(row["flops_tf"]), float(row["samples_per_s"])
        mult = 3.0 if row["mode"] == "train" else 1.0
        assert float(row["achieved_tflops"]) == pytest.approx(flops * mult * sps / 1e12, rel=1e-3)


PROFILE_FIELDS = ("params_trainable", "macs", "flops_tf")


def _profiled_apart(monkeypatch):
    """The requests the sweep profiled in a worker of their own (a second build of the model)."""
    from kbench.running.supervisor import Profiler

    apart, real = [], Profiler._run

    def run(self, payload, deadline_s):
        apart.append(payload["model"])
        return real(self, payload, deadline_s)

    monkeypatch.setattr(Profiler, "_run", run)
    return apart


def _separate_profile(name, size):
    from kbench.counting.profiling import profile
    from kbench.models.registry import resolve

    record = profile(resolve(name, (size, size)))
    return {k: record[k] for k in PROFILE_FIELDS}


def test_the_worker_profiles_the_model_it_measured(tmp_path, monkeypatch):
    """A TensorFlow float32 configuration's worker profiles the very model it measured (trained,
    here), so no model is built twice: the counts are a separate profile's, to the unit."""
    apart = _profiled_apart(monkeypatch)
    out = tmp_path / "s.csv"
    assert sweep(["--models", "resnet18", "--input-size", "32", "--batch-sizes", "2,4", "--modes", "train",
                  "--no-jit", "--out", str(out), *FAST], str(tmp_path / "cache")) == 0
    rows = read(out).to_dict("records")
    assert apart == [] and len(rows) == 2 and {row["status"] for row in rows} == {"ok"}
    expected = _separate_profile("resnet18", 32)
    assert all({k: int(row[k]) for k in PROFILE_FIELDS} == expected for row in rows)
    assert len(list((tmp_path / "cache").glob("resnet18-32x32x3-*.json"))) == 1


def test_a_model_whose_first_configuration_cannot_profile_is_profiled_apart(tmp_path, monkeypatch):
    """A first configuration in mixed precision (or one that fails) cannot give the float32
    profile: it is made apart, once, and every row has it."""
    apart = _profiled_apart(monkeypatch)
    out = tmp_path / "s.csv"
    assert sweep(["--models", "lenet5", "--input-size", "32", "--batch-sizes", "2", "--modes", "infer",
                  "--precision", "mixed_bfloat16,float32", "--no-jit", "--out", str(out), *FAST],
                 str(tmp_path / "cache")) == 0
    rows = read(out).to_dict("records")
    assert apart == ["lenet5"] and [row["precision"] for row in rows] == ["mixed_bfloat16", "float32"]
    assert all({k: int(row[k]) for k in PROFILE_FIELDS} == _separate_profile("lenet5", 32) for row in rows)


def test_resume_on_finished_file_adds_nothing(two_model_sweep, profile_cache):
    _, out = two_model_sweep
    before = out.read_text()
    code = sweep(["--models", "lenet5,resnet18", "--input-size", "32", "--batch-sizes", "1,2",
                  "--modes", "infer,train", "--no-jit", "--out", str(out), "--resume", *FAST], profile_cache)
    assert code == 0
    assert out.read_text() == before


def test_resume_after_kill(tmp_path, profile_cache):
    out = tmp_path / "killed.csv"
    args = ["--models", "lenet5", "--batch-sizes", "1,2,3", "--modes", "infer,train", "--no-jit",
            "--out", str(out), *FAST, "--profile-cache", profile_cache]
    kill_sweep_after_first_row(args, out, timeout_s=240)
    kept = read(out)
    assert 1 <= len(kept) < 6
    with out.open("a") as f:  # and a row torn in the middle of its write
        f.write(kept.iloc[0]["run_id"] + ",2026-01-01T00:00:00+00:00,lenet5,lenet,32,32,3,tra")
    assert main(["sweep", *args, "--resume"]) == 0
    df = read(out)
    assert len(df) == 6 and not df.duplicated(KEY).any()
    assert set(df["status"]) == {"ok"}
    first = df.iloc[: len(kept)]
    assert first[["run_id", "timestamp", "batch_size", "mode"]].equals(kept[["run_id", "timestamp", "batch_size", "mode"]])
    assert df["run_id"].nunique() == 2  # the first run's rows and the resumed run's


def test_failures_become_rows(tmp_path, profile_cache, monkeypatch):
    out = tmp_path / "faults.csv"
    monkeypatch.setenv("KBENCH_FAULT_INJECT",
                       "lenet5:2:infer=oom;lenet5:1:train=error;lenet5:2:train=hang;lenet5:3:train=crash")
    # The timeout must outlast the one real measurement here (lenet5 b1 infer: build, trace and a
    # few steps after the worker has started, about 1 s) on a loaded machine; only the injected
    # hang should reach it.
    code = sweep(["--models", "lenet5", "--batch-sizes", "1,2,3", "--modes", "infer,train", "--no-jit",
                  "--timeout", "10", "--out", str(out), *FAST], profile_cache)
    assert code == 0
    df = read(out)
    got = {(r["mode"], r["batch_size"]): r for _, r in df.iterrows()}
    assert len(df) == 6
    assert got[("infer", "1")]["status"] == "ok"
    assert got[("infer", "2")]["status"] == "oom" and "out of memory" in got[("infer", "2")]["error"]
    assert got[("infer", "3")]["status"] == "skipped" and "batch 2" in got[("infer", "3")]["error"]
    assert got[("train", "1")]["status"] == "error" and "RuntimeError" in got[("train", "1")]["error"]
    assert got[("train", "2")]["status"] == "timeout"
    # after the timeout the remaining configuration ran in a new worker, which then crashed
    assert got[("train", "3")]["status"] == "error" and "simulated crash" in got[("train", "3")]["error"]
    assert (df[df["status"] != "ok"]["samples_per_s"] == "").all()


@pytest.mark.parametrize("argv, needle", [
    (["--models", "no_such_net"], "unknown model"),
    (["--models", "lenet5", "--batch-sizes", "0"], "positive integers"),
    (["--models", "lenet5", "--precision", "float64"], "float64"),
    (["--models", "lenet5", "--backend", "mxnet"], "mxnet"),
    (["--models", "lenet5", "--modes", "eval"], "eval"),
    (["--models", "lenet5", "--input-size", "8"], "too small"),
])
def test_bad_input_exits_2(tmp_path, capfd, argv, needle, profile_cache):
    out = tmp_path / "never.csv"
    assert sweep([*argv, "--out", str(out), *FAST], profile_cache) == 2
    err = capfd.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("content", [
    "model,batch\nlenet5,1\n",  # not a sweep CSV
    None,  # a sweep header, then a row with too many fields
])
def test_resume_malformed_csv_exits_2(tmp_path, capfd, content, profile_cache):
    from kbench.results.schema import SWEEP_COLUMNS

    out = tmp_path / "bad.csv"
    if content is None:
        content = ",".join(SWEEP_COLUMNS) + "\n" + ",".join(["x"] * (len(SWEEP_COLUMNS) + 3)) + "\n"
    out.write_text(content)
    assert sweep(["--models", "lenet5", "--out", str(out), "--resume", *FAST], profile_cache) == 2
    err = capfd.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert out.read_text() == content


def test_existing_file_without_resume_exits_2(tmp_path, capfd, profile_cache):
    out = tmp_path / "x.csv"
    out.write_text("a\n1\n")
    assert sweep(["--models", "lenet5", "--out", str(out), *FAST], profile_cache) == 2
    assert "--resume" in capfd.readouterr().err


def test_jax_and_torch_backends(tmp_path, profile_cache):
    out = tmp_path / "backends.csv"
    code = sweep(["--models", "lenet5", "--batch-sizes", "2", "--modes", "infer,train", "--backend", "jax,torch",
                  "--precision", "float32,mixed_bfloat16", "--out", str(out), *FAST], profile_cache)
    assert code == 0
    df = read(out)
    # ok also means the worker's precision check passed: every weighted layer computed in bfloat16
    assert len(df) == 8 and set(df["status"]) == {"ok"}, df[["backend", "precision", "mode", "error"]].to_string()
    assert set(df["backend"]) == {"jax", "torch"}
    assert set(df[df["backend"] == "jax"]["jit"]) == {"true"}  # Keras' default: jit on jax, off on torch
    assert set(df[df["backend"] == "torch"]["jit"]) == {"false"}
    import jax
    import torch

    assert set(df[df["backend"] == "jax"]["backend_version"]) == {jax.__version__}
    assert set(df[df["backend"] == "torch"]["backend_version"]) <= {torch.__version__.split("+")[0], torch.__version__}
    assert (df["flops_tf"] != "").all()  # FLOPs from the (cached) TensorFlow profile


@pytest.fixture
def acquired(monkeypatch):
    """(backend, pid) of every worker the sweep takes from the pool (reused or started)."""
    from kbench.running.worker import WorkerPool

    taken = []
    real = WorkerPool.acquire

    def acquire(self, backend, n_devices=1):
        worker = real(self, backend, n_devices)
        taken.append((backend, worker.proc.pid))
        return worker

    monkeypatch.setattr(WorkerPool, "acquire", acquire)
    return taken


def test_torch_jit_is_a_skipped_row_not_a_hang(tmp_path, profile_cache, acquired):
    """Recorded as skipped without starting a measuring worker (so nothing can hang). The row's
    FLOPs may still need a TensorFlow worker to profile lenet5 (unless an earlier test of this
    process cached it): never a torch one."""
    out = tmp_path / "torchjit.csv"
    assert sweep(["--models", "lenet5", "--batch-sizes", "1", "--modes", "infer", "--backend", "torch", "--jit",
                  "--out", str(out), *FAST], profile_cache) == 0
    df = read(out)
    assert list(df["status"]) == ["skipped"] and "torch" in df["error"][0]
    assert [backend for backend, _ in acquired] in ([], ["tensorflow"])
    assert df["flops_tf"][0] != ""


def test_time_budget_leaves_configurations_unrun(tmp_path, profile_cache, capfd):
    out = tmp_path / "budget.csv"
    assert sweep(["--models", "lenet5", "--batch-sizes", "1,2", "--modes", "infer", "--no-jit",
                  "--time-budget", "0.001", "--out", str(out), *FAST], profile_cache) == 0
    assert "time budget exhausted" in capfd.readouterr().err
    assert len(read(out)) == 0  # header only: not-run configurations have no row; --resume runs them


def test_config_file(tmp_path, profile_cache):
    from kbench.commands.sweep import build_spec
    from kbench.cli import build_parser

    cfg = tmp_path / "s.toml"
    cfg.write_text('[sweep]\nmodels = ["lenet5"]\nbatch_sizes = [1, 4]\nmodes = ["infer"]\ntime_budget = 60\n')
    args = build_parser().parse_args(["sweep", "--config", str(cfg), "--batch-sizes", "2"])
    spec = build_spec(args)
    assert spec.models == ["lenet5"] and spec.batch_sizes == [2] and spec.modes == ["infer"]
    assert spec.time_budget_s == 60 and spec.jit == "auto"
    cfg.write_text("[sweep]\nbogus = 1\n")
    from kbench.errors import UsageError

    with pytest.raises(UsageError, match="bogus"):
        build_spec(build_parser().parse_args(["sweep", "--config", str(cfg)]))


def test_nightly_config_is_valid():
    from kbench.commands.sweep import build_spec
    from kbench.cli import build_parser
    from kbench.running.plan import plan, resolve

    spec = build_spec(build_parser().parse_args(["sweep", "--config", "nightly"]))  # the packaged preset
    assert spec.time_budget_s and plan(resolve(spec))


def test_fresh_worker_per_config(tmp_path, profile_cache, monkeypatch, acquired):
    """Where a device peak cannot be reset in-process (JAX on GPU), each configuration gets its
    own worker; KBENCH_FRESH_WORKER=1 forces that path on CPU so it is exercised here."""
    monkeypatch.setenv("KBENCH_FRESH_WORKER", "1")
    out = tmp_path / "fresh.csv"
    assert sweep(["--models", "lenet5", "--batch-sizes", "1,2", "--modes", "infer", "--no-jit",
                  "--out", str(out), *FAST], profile_cache) == 0
    df = read(out)
    assert list(df["status"]) == ["ok", "ok"]
    assert len({pid for _, pid in acquired}) == 2  # one worker process per configuration


def test_one_warm_worker_serves_every_model_and_a_failure_gets_a_fresh_one(tmp_path, profile_cache, monkeypatch,
                                                                           acquired):
    """Warm workers: the configurations of two models run in one TensorFlow worker process; an
    error row (here an injected one) discards its worker, and the next configuration gets a new
    one, so a failure never reaches another model's row."""
    monkeypatch.setenv("KBENCH_FAULT_INJECT", "lenet5:2:infer=error")
    out = tmp_path / "warm.csv"
    assert sweep(["--models", "lenet5,resnet18", "--input-size", "32", "--batch-sizes", "1,2", "--modes", "infer",
                  "--no-jit", "--out", str(out), *FAST], profile_cache) == 0
    df = read(out)
    assert list(df["status"]) == ["ok", "error", "ok", "ok"], df[["model", "batch_size", "error"]].to_string()
    pids = list(dict.fromkeys(pid for _, pid in acquired))  # in order; profiling may take the same worker
    assert len(pids) == 2  # lenet5's worker (both batches) failed at b2; resnet18 got a fresh one
    assert all(backend == "tensorflow" for backend, _ in acquired)


def test_each_model_is_resolved_once(monkeypatch):
    """Resolve once, at the edge: resolve() resolves each model into a request (one registry
    lookup per model, made by registry.resolve); plan() and the configurations reuse it."""
    from kbench.models import registry
    from kbench.running.plan import SweepSpec, plan, resolve

    lookups = []
    real_known_spec, real_normalize = registry.known_spec, registry.normalize_input_shape
    monkeypatch.setattr(registry, "known_spec", lambda name: lookups.append(name) or real_known_spec(name))
    monkeypatch.setattr(registry, "normalize_input_shape",
                        lambda spec, shape=None: lookups.append(spec.name) or real_normalize(spec, shape))
    spec = SweepSpec(models=["lenet5", "resnet18"], batch_sizes=[1, 2], modes=["infer", "train"],
                     precisions=["float32"], backends=["tensorflow"], input_size=(32, 32))
    configs = plan(resolve(spec))
    assert lookups == ["lenet5", "lenet5", "resnet18", "resnet18"]  # known_spec + shape, once per model
    assert len(configs) == 8 and len({id(c.request) for c in configs}) == 2
    payload = configs[0].worker_payload()
    assert payload["request"] == configs[0].request.to_payload()
    assert payload["request"]["model"] == "lenet5" and payload["request"]["input_shape"] == [32, 32, 1]


def test_jax_gpu_measures_each_configuration_in_a_fresh_worker(monkeypatch):
    from kbench.running.backends import BACKENDS

    monkeypatch.delenv("KBENCH_FRESH_WORKER", raising=False)
    assert BACKENDS["jax"].fresh_worker_per_config("gpu:0")
    assert not BACKENDS["jax"].fresh_worker_per_config("cpu")
    assert not BACKENDS["tensorflow"].fresh_worker_per_config("gpu:0")
    assert not BACKENDS["torch"].fresh_worker_per_config("gpu:0")


# ----------------------------------------------------------------------------- the profile cache

def _tiny_package(root: Path) -> Path:
    package = root / "tinyzoo"
    (package / "layers").mkdir(parents=True)
    (package / "__init__.py").write_text("from tinyzoo.net import build\n")
    (package / "net.py").write_text("def build(width=8):\n    return width\n")
    (package / "layers" / "__init__.py").write_text("")
    (package / "reference.json").write_text('{"macs": 1}\n')
    return package


def test_source_digest_changes_with_any_edit(tmp_path):
    from kbench.running.profile_cache import source_digest

    package = _tiny_package(tmp_path)
    before = source_digest([package])
    assert source_digest([package]) == before  # deterministic
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "net.cpython-311.pyc").write_bytes(b"\0compiled")
    assert source_digest([package]) == before  # bytecode is not source

    (package / "net.py").write_text("def build(width=16):\n    return width\n")
    edited = source_digest([package])
    assert edited != before
    (package / "reference.json").write_text('{"macs": 2}\n')  # data files count too
    assert source_digest([package]) != edited
    (package / "layers" / "extra.py").write_text("")
    assert len({before, edited, source_digest([package])}) == 3


def _fake_profile():
    return {"params_trainable": 61706, "macs": 416520, "flops_tf": 846346}


def test_cached_profile_is_not_used_after_the_code_changed(tmp_path, monkeypatch):
    """An entry written before a builder edit is never read after it (a new process computes
    the digest anew; here its per-process cache is cleared to stand for that)."""
    from kbench.running import profile_cache

    package = _tiny_package(tmp_path / "src")
    monkeypatch.setattr(profile_cache, "counting_roots", lambda: [package])
    profile_cache.counting_source_digest.cache_clear()
    try:
        cache = profile_cache.ProfileCache(tmp_path / "cache")
        payload = {"model": "lenet5", "input_shape": [32, 32, 1], "num_classes": 10, "variant": {}}
        cache.store(payload, _fake_profile())
        assert cache.load(payload) == _fake_profile()
        assert cache.load({**payload, "variant": {"width": 2}}) == {}  # another request

        (package / "net.py").write_text("def build(width=8):\n    return 2 * width\n")
        profile_cache.counting_source_digest.cache_clear()  # a new process
        assert cache.load(payload) == {}
        assert len(list((tmp_path / "cache").glob("*.json"))) == 1  # the old entry is still there, unread
    finally:
        profile_cache.counting_source_digest.cache_clear()


def test_cached_profile_schema_and_tf_version(tmp_path, monkeypatch):
    from kbench.common import env
    from kbench.running import profile_cache

    cache = profile_cache.ProfileCache(tmp_path)
    payload = {"model": "lenet5", "input_shape": [32, 32, 1], "num_classes": 10, "variant": {}}
    cache.store(payload, _fake_profile())
    real_version = env.package_version
    # Where TensorFlow is installed, an entry counted under another TF version is recounted...
    monkeypatch.setattr(env, "package_version", lambda p: "0.0.1" if p == "tensorflow" else real_version(p))
    assert cache.load(payload) == {}
    # ...but a machine without TensorFlow (the GPU hosts), which cannot count, takes it.
    monkeypatch.setattr(env, "package_version", lambda p: "" if p == "tensorflow" else real_version(p))
    assert cache.load(payload) == _fake_profile()
    monkeypatch.setattr(profile_cache, "PROFILE_SCHEMA", profile_cache.PROFILE_SCHEMA + 1)
    assert cache.load(payload) == {}  # a new schema is a new key


def test_default_profile_cache_is_beside_the_output(tmp_path, monkeypatch, capfd):
    """--profile-only fills the cache beside --out and writes nothing else: no CSV, and no
    results/ directory where the user did not ask for output. A second run finds every entry."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "elsewhere" / "sweep.csv"
    args = ["sweep", "--models", "lenet5", "--input-size", "32", "--profile-only", "--out", str(out)]
    assert main(args) == 0
    assert "1 profiles" in capfd.readouterr().err
    entries = list((tmp_path / "elsewhere" / ".profile-cache").glob("lenet5-32x32x1-*.json"))
    assert len(entries) == 1 and not out.exists() and not (tmp_path / "results").exists()
    import json

    entry = json.loads(entries[0].read_text())
    assert entry["macs"] == 416520 and entry["params_trainable"] == 61706
    assert main(args) == 0
    assert "(0 computed now)" in capfd.readouterr().err


def test_profile_cache_dir_default():
    from kbench.running.plan import SweepSpec

    spec = SweepSpec(models=["lenet5"], batch_sizes=[1], modes=["infer"], precisions=["float32"],
                     backends=["tensorflow"], out="/tmp/x/y/run.csv")
    assert spec.profile_cache_dir == Path("/tmp/x/y/.profile-cache")
    spec.profile_cache = "/somewhere"
    assert spec.profile_cache_dir == Path("/somewhere")
