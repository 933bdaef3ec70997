"""Shared set-up for the pytest-benchmark micro-benchmarks (run only on purpose).

Run them with::

    .venv/bin/python -m pytest benchmarks/ --benchmark-only --benchmark-json=results/bench.json
    .venv/bin/python -m kbench convert-benchmarks results/bench.json --out results/bench.csv

(``pytest`` without arguments collects ``tests/`` only: ``testpaths = tests`` in setup.cfg.)

``block_bench(block_fn, input_shape, batch_size=..., mode=..., jit=...)`` builds a one-block
Keras model and returns ``(run, extra_info)``: ``run()`` executes one compiled step (the same
``kbench.running.timing.build_step`` that the sweep uses) and waits for the device, so each pytest-
benchmark round is one synchronised step. Put ``extra_info`` into ``benchmark.extra_info`` so
``kbench convert-benchmarks`` can fill the sweep columns (batch size, input, mode, backend...).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

ROUNDS = int(os.environ.get("KBENCH_BENCH_ROUNDS", "30"))
WARMUP_ROUNDS = int(os.environ.get("KBENCH_BENCH_WARMUP", "5"))


@pytest.fixture
def block_bench():
    from kbench.common.quiet import quiet_import

    keras = quiet_import("keras")
    from kbench.running import backends, timing
    from kbench.common import env
    from kbench.counting.layer_walk import count_params

    def make(block_fn, input_shape, *, name, batch_size=8, mode="infer", jit=False, precision="float32"):
        keras.config.set_dtype_policy(precision)
        try:
            keras.utils.clear_session()
            inputs = keras.Input(shape=input_shape)
            model = keras.Model(inputs, block_fn(inputs), name=name)
        finally:
            keras.config.set_dtype_policy("float32")
        x, y, loss = timing.make_data(model, batch_size, mode)
        step, sync = timing.build_step(model, mode, jit, x, y, loss)

        def run():
            return sync(step())

        run()  # compile outside the timed rounds
        backend = backends.active()
        info = {"model": name, "family": "block", "batch_size": batch_size, "mode": mode, "backend": backend.name,
                "precision": precision, "jit": bool(jit), "input_shape": list(input_shape),
                "params_trainable": count_params(model)["params_trainable"], "warmup": WARMUP_ROUNDS,
                **env.environment(**backend.detect(), backend_version=backend.version())}
        return run, info

    return make


@pytest.fixture
def bench_step(benchmark):
    """``bench_step(run, info)``: time ``run`` one step per round and attach ``info``."""

    def go(run, info):
        benchmark.extra_info.update(info)
        benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS, iterations=1)

    return go
