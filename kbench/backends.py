"""The Keras backends kbench measures on: one class per backend, one registry.

Everything that differs between TensorFlow, JAX and PyTorch lives here, behind ``Backend``:
whether the framework is installed (and how to install it), Keras' default for ``jit_compile``,
which device a worker sees, how to reset and read the device's peak memory, how to compile one
train/infer step and wait for it, whether a configuration needs a fresh worker process, and the
framework's version. The rest of kbench asks ``BACKENDS[name]`` and never branches on a backend
name; adding a backend is one subclass and one entry in ``BACKENDS``.

Framework modules are imported inside the methods: the sweep's parent process imports this
module without any framework, and a worker imports only its own.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Callable

from kbench import devices, env

FRESH_WORKER_ENV = "KBENCH_FRESH_WORKER"

Step = Callable[[], Any]
Sync = Callable[[Any], Any]


class Backend:
    """What kbench needs from one Keras backend. Subclasses set the class attributes."""

    name: str = ""
    module: str = ""  # imported to run it; its presence means "installed"
    install_extra: str = ""  # pip install kbench[<extra>]
    jit_unsupported_reason: str = ""  # non-empty: jit configurations are recorded as skipped

    @property
    def supports_jit(self) -> bool:
        return not self.jit_unsupported_reason

    def available(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def install_hint(self) -> str:
        return f"pip install kbench[{self.install_extra}]"

    def version(self) -> str:
        return env.package_version(self.module)

    def default_jit(self) -> bool:
        """Keras' own default (``jit_compile="auto"``) on this host."""
        return self.supports_jit

    def detect(self) -> dict[str, str]:
        """``{"device": "gpu:0"|"cpu", "device_kind": name}``; call only inside a worker whose
        framework is imported. Detection never fails a measurement: anything odd means CPU."""
        device, kind = "cpu", ""
        try:
            device, kind = self._accelerator()
        except Exception:  # noqa: BLE001
            device, kind = "cpu", ""
        return {"device": device, "device_kind": kind or env.cpu_name()}

    def _accelerator(self) -> tuple[str, str]:
        return "cpu", ""

    def fresh_worker_per_config(self, device: str) -> bool:
        """Whether each configuration must run in its own worker process so that its peak
        memory is its own; ``KBENCH_FRESH_WORKER=1`` asks for it on any backend."""
        return os.environ.get(FRESH_WORKER_ENV) == "1"

    def peak_memory_reset(self, device: str) -> None:
        if device.startswith("cpu"):
            return
        try:
            self._reset_device_peak()
        except Exception:  # noqa: BLE001 - a missing statistic must not fail a measurement
            pass

    def _reset_device_peak(self) -> None:
        pass

    def peak_memory_mb(self, device: str) -> tuple[float | None, str]:
        """Peak memory in MB and its source: the device allocator's peak since the last reset
        (``device``), or the process's peak so far where the framework cannot reset it
        (``device_process_peak``); on CPU, or where the device reports nothing, the worker's
        peak resident set size (``host_rss``), a high-water mark over everything that process
        ran so far (compare it across batch sizes only as an upper bound)."""
        if not device.startswith("cpu"):
            try:
                found = self._device_peak()
            except Exception:  # noqa: BLE001
                found = None
            if found is not None:
                return found
        return devices.host_peak_rss_mb(), "host_rss"

    def _device_peak(self) -> tuple[float, str] | None:
        return None

    def make_step(self, model, mode: str, jit: bool, data: tuple) -> tuple[Step, Sync]:
        """``(step, sync)``: ``step()`` runs one compiled Keras ``train_step``/``predict_step``
        on ``data``; ``sync(out)`` waits until the device has finished it."""
        raise NotImplementedError


class TensorFlowBackend(Backend):
    name = "tensorflow"
    module = "tensorflow"
    install_extra = "cpu"

    def default_jit(self) -> bool:
        # Keras enables XLA on TensorFlow only with a GPU: XLA's CPU convolutions are about 10x
        # slower than TensorFlow's oneDNN kernels on the CPUs measured here.
        return devices.host_has_gpu()

    def _accelerator(self):
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return "cpu", ""
        return "gpu:0", tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")

    def _reset_device_peak(self):
        import tensorflow as tf

        tf.config.experimental.reset_memory_stats("GPU:0")

    def _device_peak(self):
        import tensorflow as tf

        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20, "device"

    def make_step(self, model, mode, jit, data):
        import keras
        import tensorflow as tf

        # jit off is still a graph function (what Keras' fit/predict run without XLA).
        fn = tf.function(model.train_step if mode == "train" else model.predict_step,
                         jit_compile=bool(jit), reduce_retracing=True)
        leaves = keras.tree.flatten

        def step():
            return fn(data)

        def sync(out):
            for leaf in leaves(out):
                leaf.numpy()
        return step, sync


class JaxBackend(Backend):
    name = "jax"
    module = "jax"
    install_extra = "jax"

    def _accelerator(self):
        import jax

        first = jax.devices()[0]
        if first.platform == "cpu":
            return "cpu", ""
        return f"{first.platform}:{first.id}", first.device_kind

    def fresh_worker_per_config(self, device):
        # JAX cannot reset its allocator's peak inside a process: on an accelerator a long-lived
        # worker would report the largest configuration so far.
        return super().fresh_worker_per_config(device) or not device.startswith("cpu")

    def _device_peak(self):
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        if "peak_bytes_in_use" not in stats:
            return None
        return stats["peak_bytes_in_use"] / 2**20, "device_process_peak"

    def make_step(self, model, mode, jit, data):
        import jax

        if mode == "train":
            # Keras' stateless train step over the whole state, donated as fit() does under jit.
            state = [(
                [v.value for v in model.trainable_variables],
                [v.value for v in model.non_trainable_variables],
                [v.value for v in model.optimizer.variables],
                [v.value for v in model.metrics_variables],
            )]
            fn = jax.jit(model.train_step, donate_argnums=0) if jit else model.train_step

            def step():
                logs, state[0] = fn(state[0], data)
                return logs, state[0]
        else:
            predict_state = ([v.value for v in model.trainable_variables],
                             [v.value for v in model.non_trainable_variables])

            def predict(weights, batch):
                return model.predict_step(weights, batch)[0]
            fn = jax.jit(predict) if jit else predict

            def step():
                return fn(predict_state, data)
        return step, jax.block_until_ready


class TorchBackend(Backend):
    name = "torch"
    module = "torch"
    install_extra = "torch"
    jit_unsupported_reason = ("jit_compile on the torch backend (torch.compile under Keras) recompiles and is "
                              "not measured; run torch with --no-jit")

    def _accelerator(self):
        import torch

        if not torch.cuda.is_available():
            return "cpu", ""
        return "gpu:0", torch.cuda.get_device_name(0)

    def _reset_device_peak(self):
        import torch

        torch.cuda.reset_peak_memory_stats()

    def _device_peak(self):
        import torch

        return torch.cuda.max_memory_allocated() / 2**20, "device"

    def make_step(self, model, mode, jit, data):
        import torch

        cuda = torch.cuda.is_available()
        if mode == "train":
            def step():
                return model.train_step(data)
        else:
            def step():
                with torch.no_grad():
                    return model.predict_step(data)

        def sync(out):
            # Eager CPU ops are synchronous; CUDA kernels are queued until synchronised.
            if cuda:
                torch.cuda.synchronize()
        return step, sync


BACKENDS: dict[str, Backend] = {b.name: b for b in (TensorFlowBackend(), JaxBackend(), TorchBackend())}


def get(name: str) -> Backend:
    """The backend called ``name`` (a ``KeyError`` names the known ones)."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise KeyError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}") from None


def active() -> Backend:
    """The backend Keras runs on in this process (imports Keras)."""
    import keras

    return get(keras.backend.backend())
