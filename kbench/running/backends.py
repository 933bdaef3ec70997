"""The Keras backends kbench measures on: one class per backend, one registry.

Everything that differs between TensorFlow, JAX and PyTorch lives here, behind ``Backend``:
whether the framework is installed (and how to install it), Keras' default for ``jit_compile``,
which device a worker sees, how to reset and read the device's peak memory, how to compile one
train/infer step and wait for it, whether a configuration needs a fresh worker process, the
framework's version, and data parallelism over n devices (``DataParallel``: the devices a worker
sees, the strategy, the split of the global batch and the check that it really happened). The
rest of kbench asks ``BACKENDS[name]`` and never branches on a backend name; adding a backend is
one subclass and one entry in ``BACKENDS``.

Framework modules are imported inside the methods: the sweep's parent process imports this
module without any framework, and a worker imports only its own.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
from typing import Any, Callable

from kbench.common import devices, env

FRESH_WORKER_ENV = "KBENCH_FRESH_WORKER"

Step = Callable[[], Any]
Sync = Callable[[Any], Any]
SIMULATED_DEVICES_NOTE = "simulated on the CPU"


class DeviceShortage(RuntimeError):
    """Fewer devices than the configuration's n_devices: a ``skipped`` row, not an error."""


class DataParallel:
    """One configuration's data parallelism over ``n`` devices (n >= 2) on one backend.

    ``scope()`` holds while the model is built and compiled; ``distribute(data)`` splits the
    global batch along its first axis over the devices (with several ``processes``, ``data`` is
    this process's part of it, and the global batch is the parts of all processes in order);
    ``check(model, data)`` raises ``RuntimeError`` (an ``error`` row) unless every device holds
    its own part of the batch and a replica of every weight -- a configuration that silently runs
    on one device must not become a row labelled n devices; ``make_step`` is the backend's
    compiled step over the split data.
    """

    n: int
    devices: list[str]
    processes: int = 1  # the processes that drive the n devices together
    process_index: int = 0  # this process's place among them: it feeds the part of the batch with that index

    def scope(self):
        return contextlib.nullcontext()

    def distribute(self, data):
        raise NotImplementedError

    def check(self, model, data) -> None:
        raise NotImplementedError

    def make_step(self, model, mode: str, jit: bool, data) -> tuple[Step, Sync]:
        raise NotImplementedError


class Backend:
    """What kbench needs from one Keras backend. Subclasses set the class attributes."""

    name: str = ""
    module: str = ""  # imported to run it; its presence means "installed"
    install_extra: str = ""  # pip install kbench[<extra>]
    jit_unsupported_reason: str = ""  # non-empty: jit configurations are recorded as skipped
    profiles: bool = False  # its workers can TF-profile a model (the profile is a TensorFlow graph)

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

    _host_peak_reset = False

    def peak_memory_reset(self, device: str) -> None:
        """Start the peak of the next configuration: the host's resident set always, the
        device allocator's where it can."""
        self._host_peak_reset = devices.reset_host_peak()
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
        peak resident set size since ``peak_memory_reset`` (``host_rss``; ``host_rss_lifetime``
        where the host's peak cannot be reset: a high-water mark over the worker's life)."""
        if not device.startswith("cpu"):
            try:
                found = self._device_peak()
            except Exception:  # noqa: BLE001
                found = None
            if found is not None:
                return found
        return devices.host_peak_rss_mb(), "host_rss" if self._host_peak_reset else "host_rss_lifetime"

    def _device_peak(self) -> tuple[float, str] | None:
        return None

    def make_step(self, model, mode: str, jit: bool, data: tuple) -> tuple[Step, Sync]:
        """``(step, sync)``: ``step()`` runs one compiled Keras ``train_step``/``predict_step``
        on ``data``; ``sync(out)`` waits until the device has finished it."""
        raise NotImplementedError

    # -- data parallelism over n devices
    multi_device_unsupported_reason: str = ""  # non-empty: n_devices > 1 is recorded as skipped

    def worker_env(self, n_devices: int) -> dict[str, str]:
        """Environment variables for a worker that measures on ``n_devices`` (set by the parent
        before the worker's framework starts)."""
        return {}

    def prepare_devices(self, n_devices: int) -> None:
        """In the worker, before the framework's runtime starts (before Keras is imported)."""

    def data_parallel(self, n_devices: int) -> DataParallel:
        """The ``DataParallel`` of this backend over its first ``n_devices`` devices (in the worker);
        ``DeviceShortage`` when there are fewer."""
        raise NotImplementedError

    # -- one model over several processes (``--processes``)
    multi_process_supported: bool = False

    def join_processes(self, n_processes: int, process_id: int, coordinator: str, timeout_s: int,
                       devices_per_process: int = 1) -> None:
        """In the worker, before anything touches a device: join the job of ``n_processes``
        processes as ``process_id`` (coordinator ``host:port``; '' = the cluster's launcher tells
        the framework everything), this process driving ``devices_per_process`` devices. Raises
        when the job cannot be formed within ``timeout_s``."""
        raise NotImplementedError


class TensorFlowBackend(Backend):
    name = "tensorflow"
    module = "tensorflow"
    install_extra = "cpu"
    profiles = True

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

    def prepare_devices(self, n_devices):
        # Without GPUs, n logical CPU devices: possible only before TensorFlow's runtime starts.
        if n_devices < 2:
            return
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n_devices)

    def data_parallel(self, n_devices):
        return _MirroredDataParallel(n_devices)


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

    def worker_env(self, n_devices):
        # Simulated devices where there is no accelerator; ignored by JAX on a GPU/TPU host,
        # where the first n accelerators are used.
        if n_devices < 2:
            return {}
        flags = re.sub(r"--xla_force_host_platform_device_count=\S*", "", os.environ.get("XLA_FLAGS", "")).strip()
        return {"XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={n_devices}".strip()}

    def data_parallel(self, n_devices):
        return _KerasDataParallel(n_devices)

    multi_process_supported = True

    def join_processes(self, n_processes, process_id, coordinator, timeout_s, devices_per_process=1):
        import jax

        if coordinator:  # this host: every value given, no cluster detection (a Slurm job's variables are not ours)
            where = {"coordinator_address": coordinator, "coordinator_bind_address": coordinator,
                     "num_processes": n_processes, "process_id": process_id, "cluster_detection_method": "deactivate"}
        else:  # Slurm, Open MPI, Cloud TPU: jax.distributed finds the coordinator, the count and the id itself
            where = {}
            local = slurm_local_devices(devices_per_process)
            if local is not None:
                where["local_device_ids"] = local
        # Short timeouts: a dead or hung peer ends the others in seconds, not JAX's default minutes.
        jax.distributed.initialize(**where, initialization_timeout=int(timeout_s),
                                   heartbeat_timeout_seconds=PEER_HEARTBEAT_TIMEOUT_S,
                                   shutdown_timeout_seconds=PEER_SHUTDOWN_TIMEOUT_S)
        if jax.process_count() != n_processes:
            raise RuntimeError(f"jax.distributed formed a job of {jax.process_count()} processes, not {n_processes}")


def slurm_local_devices(per_process: int, environ=None) -> list[int] | None:
    """The accelerators a task of an srun step drives, by their index among those it sees (JAX's
    ``local_device_ids``); None outside Slurm. JAX's own Slurm default is one device per task
    (``[SLURM_LOCALID]``); a task driving k devices takes the k-th slice of its node's devices,
    ``SLURM_LOCALID*k ... +k-1``, unless Slurm gave the task exactly k of its own
    (``CUDA_VISIBLE_DEVICES`` lists k: ``--gpus-per-task=k``), which it then sees as 0 ... k-1.
    On a host without accelerators the ids do nothing (JAX applies them to CUDA/ROCm only)."""
    environ = os.environ if environ is None else environ
    if "SLURM_LOCALID" not in environ:
        return None
    own = [d for d in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if len(own) == per_process:
        return list(range(per_process))
    first = int(environ["SLURM_LOCALID"]) * per_process
    return list(range(first, first + per_process))


# jax.distributed's heartbeat and shutdown-barrier timeouts for a sweep's process group (seconds):
# a peer silent this long is declared dead and the job ends.
PEER_HEARTBEAT_TIMEOUT_S = 10
PEER_SHUTDOWN_TIMEOUT_S = 10


class TorchBackend(Backend):
    name = "torch"
    module = "torch"
    install_extra = "torch"
    multi_device_unsupported_reason = ("multi-device rows are measured on jax (keras.distribution) and tensorflow "
                                       "(tf.distribute), not on torch")
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


# ----------------------------------------------------------------------------- data parallelism

def _shortage(n_devices: int, found: list[str]) -> DeviceShortage:
    return DeviceShortage(f"{n_devices} devices requested, this worker sees {len(found)} "
                          f"({', '.join(found) or 'none'})")


class _KerasDataParallel(DataParallel):
    """JAX: Keras 3's ``keras.distribution.DataParallel`` over the first n devices, set before
    the model is built (weights replicated); the batch is placed with the distribution's data
    layout (sharded along the batch axis), and ``jax.jit`` partitions the step accordingly.
    After ``jax.distributed.initialize`` the devices are those of every process of the job: each
    process places its own part of the global batch on its own devices
    (``jax.make_array_from_process_local_data``; one process: the whole batch)."""

    def __init__(self, n_devices: int):
        import jax
        import keras

        found = keras.distribution.list_devices()
        if len(found) < n_devices:
            raise _shortage(n_devices, found)
        self.n = n_devices
        self.devices = list(found[:n_devices])
        self.processes = jax.process_count()
        self.process_index = jax.process_index()
        self.distribution = keras.distribution.DataParallel(devices=self.devices)

    def scope(self):
        return self.distribution.scope()

    def distribute(self, data):
        import jax
        import keras
        import numpy as np

        def place(part):
            if part is None:
                return None
            part = np.asarray(part)
            shape = (part.shape[0] * self.processes, *part.shape[1:])
            return jax.make_array_from_process_local_data(self.distribution.get_data_layout(shape).backend_layout,
                                                          part, shape)
        return keras.tree.map_structure(place, data)

    def check(self, model, data):
        import keras

        x = keras.tree.flatten(data)[0]
        batch = x.shape[0]
        shard = x.sharding.shard_shape(x.shape)
        if len(x.sharding.device_set) != self.n or shard[0] * self.n != batch:
            raise RuntimeError(f"the global batch of {batch} is not split over {self.n} devices: input sharding "
                               f"{x.sharding} puts {shard[0]} samples on each of {len(x.sharding.device_set)} devices")
        local = len(x.addressable_shards)
        if local * self.processes != self.n:
            raise RuntimeError(f"process {self.process_index} of {self.processes} feeds {local} of the {self.n} "
                               f"devices, not {self.n // self.processes}")
        for v in model.weights:
            sharding = v.value.sharding
            if len(sharding.device_set) != self.n or not sharding.is_fully_replicated:
                raise RuntimeError(f"weight {v.path} is not replicated on the {self.n} devices ({sharding})")

    def make_step(self, model, mode, jit, data):
        return BACKENDS["jax"].make_step(model, mode, jit, data)


class _MirroredDataParallel(DataParallel):
    """TensorFlow: ``tf.distribute.MirroredStrategy`` over the first n GPUs (or, without GPUs,
    n logical CPU devices, see ``TensorFlowBackend.prepare_devices``); the model is built and
    compiled inside its scope (mirrored weights), each replica gets its slice of the global batch
    (``experimental_distribute_values_from_function``), and the step is Keras' own
    ``train_step``/``predict_step`` under ``strategy.run``, as Keras' ``fit`` runs it."""

    def __init__(self, n_devices: int):
        import tensorflow as tf

        found = [d.name for d in (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))]
        if len(found) < n_devices:
            raise _shortage(n_devices, found)
        self.n = n_devices
        self.devices = found[:n_devices]
        self.strategy = tf.distribute.MirroredStrategy(devices=self.devices)

    def scope(self):
        return self.strategy.scope()

    def distribute(self, data):
        import tensorflow as tf

        batch = int(tf.nest.flatten(data)[0].shape[0])
        per = batch // self.n

        devices = self.strategy.extended.worker_devices

        def part(context):
            i = context.replica_id_in_sync_group
            with tf.device(devices[i]):  # the function's values are not placed for us: each slice on its device
                return tf.nest.map_structure(lambda t: None if t is None else tf.identity(t[i * per:(i + 1) * per]),
                                             data)
        return self.strategy.experimental_distribute_values_from_function(part)

    def _local(self, value) -> list:
        return list(self.strategy.experimental_local_results(value))

    def check(self, model, data):
        import tensorflow as tf

        if self.strategy.num_replicas_in_sync != self.n:
            raise RuntimeError(f"MirroredStrategy has {self.strategy.num_replicas_in_sync} replicas, not {self.n}")
        parts = self._local(tf.nest.flatten(data, expand_composites=False)[0])
        placed = {tf.DeviceSpec.from_string(p.device).to_string() for p in parts}
        sizes = [int(p.shape[0]) for p in parts]
        if len(parts) != self.n or len(placed) != self.n or len(set(sizes)) != 1:
            raise RuntimeError(f"the global batch is not split over {self.n} devices: parts of {sizes} samples on "
                               f"{sorted(placed)}")
        for v in model.weights:
            copies = self._local(v.value)
            where = {tf.DeviceSpec.from_string(c.device).to_string() for c in copies}
            if len(copies) != self.n or len(where) != self.n:
                raise RuntimeError(f"weight {v.path} is not mirrored on the {self.n} devices ({len(copies)} copies on "
                                   f"{sorted(where)})")

    def make_step(self, model, mode, jit, data):
        import tensorflow as tf

        strategy = self.strategy
        one_step = model.train_step if mode == "train" else model.predict_step
        if jit:  # XLA per replica, as Keras' TensorFlow trainer compiles it under a strategy
            one_step = tf.function(one_step, jit_compile=True, reduce_retracing=True)
        fn = tf.function(lambda d: strategy.run(one_step, args=(d,)), reduce_retracing=True)

        def step():
            return fn(data)

        def sync(out):
            for leaf in tf.nest.flatten(out):
                for part in self._local(leaf):
                    part.numpy()
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
