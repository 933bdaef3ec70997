"""kbench.running.backends: one class per Keras backend behind one interface, looked up by name."""

from __future__ import annotations

import pytest

from kbench.running import backends
from kbench.common import devices, env
from kbench.running.backends import BACKENDS, Backend


def test_registry_names_every_keras_backend():
    assert list(BACKENDS) == ["tensorflow", "jax", "torch"]
    for name, backend in BACKENDS.items():
        assert isinstance(backend, Backend) and backend.name == name
        assert backend.install_hint().startswith("pip install kbench[")
        assert backend.available()  # the dev environment has all three
        assert backend.version() == env.package_version(backend.module) != ""
    with pytest.raises(KeyError, match="known: tensorflow, jax, torch"):
        backends.get("mxnet")


def test_keras_default_jit():
    assert BACKENDS["jax"].default_jit() is True
    assert BACKENDS["torch"].default_jit() is False
    assert BACKENDS["tensorflow"].default_jit() is devices.host_has_gpu()


def test_jit_support():
    assert BACKENDS["tensorflow"].supports_jit and BACKENDS["jax"].supports_jit
    torch = BACKENDS["torch"]
    assert not torch.supports_jit and "--no-jit" in torch.jit_unsupported_reason


def test_fresh_worker_env_forces_it_everywhere(monkeypatch):
    monkeypatch.setenv(backends.FRESH_WORKER_ENV, "1")
    assert all(b.fresh_worker_per_config("cpu") for b in BACKENDS.values())
    monkeypatch.setenv(backends.FRESH_WORKER_ENV, "0")
    assert not any(b.fresh_worker_per_config("cpu") for b in BACKENDS.values())


def test_active_backend_on_cpu():
    """The tests run on TensorFlow without a GPU: the device is the CPU, its peak memory the RSS."""
    active = backends.active()
    assert active is BACKENDS["tensorflow"]
    device = active.detect()
    assert device["device"] == "cpu" and device["device_kind"] == env.cpu_name()
    active.peak_memory_reset("cpu")
    peak, source = active.peak_memory_mb("cpu")
    assert source == "host_rss" and peak > 0


def test_a_new_backend_is_one_class(monkeypatch):
    """What a new backend needs: a subclass with its attributes and step; the sweep's planning
    picks it up from the registry."""
    from kbench.running.plan import jit_values

    class NumpyBackend(Backend):
        name = "numpy"
        module = "numpy"
        install_extra = "numpy"
        jit_unsupported_reason = "numpy has no compiler"

        def make_step(self, model, mode, jit, data):
            return (lambda: model(*data)), (lambda out: out)

    monkeypatch.setitem(BACKENDS, "numpy", NumpyBackend())
    assert jit_values("auto", "numpy") == [False]
    assert BACKENDS["numpy"].detect()["device"] == "cpu"
    assert BACKENDS["numpy"].peak_memory_mb("cpu")[1] == "host_rss_lifetime"  # no reset yet: the process's peak
    BACKENDS["numpy"].peak_memory_reset("cpu")
    assert BACKENDS["numpy"].peak_memory_mb("cpu")[1] == "host_rss"  # since the reset: one configuration's peak
