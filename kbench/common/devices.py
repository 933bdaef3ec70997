"""The table of dense peak TFLOP/s for MFU, and host facts that no backend owns.

Device detection and peak memory are backend-specific: ``kbench.running.backends``.

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


def _proc_status_mb(field: str) -> float | None:
    """A ``kB`` field of /proc/self/status (``VmRSS``, ``VmHWM``) in MB; None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 2**10
    except (OSError, ValueError, IndexError):
        pass
    return None


def host_rss_mb() -> float | None:
    """This process's resident set size now, in MB (None where /proc is not available)."""
    return _proc_status_mb("VmRSS")


def reset_host_peak() -> bool:
    """Restart this process's peak resident set size from its current size (Linux: writing 5 to
    /proc/self/clear_refs resets ``VmHWM``), so that the next ``host_peak_rss_mb`` is the peak of
    what ran since. False where that is not possible: the peak then covers the process's life."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def host_peak_rss_mb() -> float:
    """This process's peak resident set size in MB: since the last ``reset_host_peak`` (``VmHWM``),
    else over its life (``resource.getrusage``)."""
    peak = _proc_status_mb("VmHWM")
    if peak is not None:
        return peak
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / 2**20 if os.uname().sysname == "Darwin" else rss / 2**10
