"""Device detection (per Keras backend) and a table of dense peak TFLOP/s for MFU.

Peaks are the vendor's *dense* figures (no 2:4 sparsity), in TFLOP/s, per precision class:

* ``float32`` -> the TF32 tensor-core peak where the GPU has TF32 (Ampere and later), since
  TensorFlow, JAX and cuDNN convolutions in PyTorch use TF32 for float32 convs/matmuls by
  default there; the plain FP32 (CUDA core) peak on Volta/Turing, which have no TF32.
* ``mixed_float16`` -> the FP16 tensor-core peak (FP32 accumulate where the datasheet gives both).
* ``mixed_bfloat16`` -> the BF16 tensor-core peak; ``None`` where the GPU has no BF16 path.

CPU peaks are unknown (they depend on cores, clocks and vector units), so ``mfu`` stays empty
on CPU unless ``--peak-tflops`` gives the denominator.

Sources: NVIDIA datasheets (A100, H100 SXM5/PCIe, H200, L4, A10, V100, T4).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from kbench import env


@dataclass(frozen=True)
class Peak:
    name: str
    pattern: str  # regex over the device name, case-insensitive
    fp32: float  # plain FP32 (no tensor cores)
    tf32: float | None
    fp16: float | None
    bf16: float | None

    def for_precision(self, precision: str) -> float | None:
        if precision == "mixed_float16":
            return self.fp16
        if precision == "mixed_bfloat16":
            return self.bf16
        return self.tf32 if self.tf32 is not None else self.fp32


# Order matters: more specific patterns first ("A100" before "A10", "H100 PCIe" before "H100").
PEAKS: tuple[Peak, ...] = (
    Peak("H200", r"\bH200\b", fp32=67.0, tf32=494.7, fp16=989.4, bf16=989.4),
    Peak("H100 PCIe", r"\bH100\b.*PCIe", fp32=51.0, tf32=378.0, fp16=756.0, bf16=756.0),
    Peak("H100 SXM", r"\bH100\b", fp32=67.0, tf32=494.7, fp16=989.4, bf16=989.4),
    Peak("A100", r"\bA100\b", fp32=19.5, tf32=156.0, fp16=312.0, bf16=312.0),
    Peak("A10", r"\bA10\b(?!0)", fp32=31.2, tf32=62.5, fp16=125.0, bf16=125.0),
    Peak("L4", r"\bL4\b", fp32=30.3, tf32=60.0, fp16=121.0, bf16=121.0),
    Peak("V100 PCIe", r"\bV100\b.*PCIE", fp32=14.0, tf32=None, fp16=112.0, bf16=None),
    Peak("V100 SXM2", r"\bV100\b", fp32=15.7, tf32=None, fp16=125.0, bf16=None),
    Peak("T4", r"\bT4\b", fp32=8.1, tf32=None, fp16=65.0, bf16=None),
)


def lookup(device_kind: str | None) -> Peak | None:
    """The table entry for a device name (e.g. 'NVIDIA A100-SXM4-80GB'), or None if unknown."""
    if not device_kind:
        return None
    for peak in PEAKS:
        if re.search(peak.pattern, device_kind, flags=re.IGNORECASE):
            return peak
    return None


def peak_tflops(device: str, device_kind: str | None, precision: str, override: float | None = None) -> float | None:
    """Dense peak TFLOP/s for MFU: the override if given, else the table (None on CPU/unknown)."""
    if override is not None:
        return float(override)
    if not device or device.startswith("cpu"):
        return None
    peak = lookup(device_kind)
    return peak.for_precision(precision) if peak else None


def flops_multiplier(mode: str) -> float:
    """Convention: a training step costs 3x the forward FLOPs (forward + 2x for backward:
    gradients w.r.t. activations and w.r.t. weights); the optimizer update is neglected."""
    return 3.0 if mode == "train" else 1.0


@functools.lru_cache(maxsize=None)
def host_has_gpu() -> bool:
    """Whether the host has an NVIDIA GPU, without importing a framework (``nvidia-smi -L``)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    exe = shutil.which("nvidia-smi")
    if not exe:
        return False
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.startswith("GPU ") for line in out.splitlines())


def detect(backend: str) -> dict[str, str]:
    """``{"device": "gpu:0"|"cpu", "device_kind": name}`` for the active Keras backend.

    Call only inside a process whose backend framework is already imported (the worker).
    """
    device, kind = "cpu", ""
    try:
        if backend == "jax":
            import jax

            d = jax.devices()[0]
            device = "cpu" if d.platform == "cpu" else f"{d.platform}:{d.id}"
            kind = "" if d.platform == "cpu" else d.device_kind
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                device, kind = "gpu:0", torch.cuda.get_device_name(0)
        elif backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                device = "gpu:0"
                kind = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    except Exception:  # detection must never fail a measurement
        pass
    return {"device": device, "device_kind": kind or env.cpu_name()}


FRESH_WORKER_ENV = "KBENCH_FRESH_WORKER"


def fresh_worker_per_config(backend: str, device: str) -> bool:
    """Whether the sweep must measure each configuration in a fresh worker process.

    JAX cannot reset its device allocator's peak inside a process, so on an accelerator a
    long-lived worker would report the largest configuration so far; one configuration per
    process makes ``peak_mem_mb`` that configuration's own (at the cost of one start-up each).
    ``KBENCH_FRESH_WORKER=1`` asks for it on any backend (full isolation).
    """
    if os.environ.get(FRESH_WORKER_ENV) == "1":
        return True
    return backend == "jax" and not device.startswith("cpu")


def peak_memory_reset(backend: str, device: str) -> None:
    try:
        if device.startswith("cpu"):
            return
        if backend == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.reset_memory_stats("GPU:0")
        elif backend == "torch":
            import torch

            torch.cuda.reset_peak_memory_stats()
    except Exception:
        pass


def peak_memory_mb(backend: str, device: str) -> tuple[float | None, str]:
    """Peak memory in MB and its source.

    GPU: the framework's device-allocator peak since the last reset (TF ``get_memory_info``,
    torch ``max_memory_allocated``, JAX ``memory_stats()['peak_bytes_in_use']``, which JAX
    cannot reset: it is the process's peak so far). CPU: the worker process's peak resident
    set size (``resource.getrusage``), a high-water mark over everything that process ran so
    far (imports, earlier configurations of the same model), so compare it across batch sizes
    only as an upper bound.
    """
    try:
        if not device.startswith("cpu"):
            if backend == "tensorflow":
                import tensorflow as tf

                return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20, "device"
            if backend == "torch":
                import torch

                return torch.cuda.max_memory_allocated() / 2**20, "device"
            if backend == "jax":
                import jax

                stats = jax.devices()[0].memory_stats() or {}
                if "peak_bytes_in_use" in stats:
                    return stats["peak_bytes_in_use"] / 2**20, "device_process_peak"
    except Exception:
        pass
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return (rss / 2**20 if os.uname().sysname == "Darwin" else rss / 2**10), "host_rss"
