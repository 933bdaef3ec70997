"""A sweep's rows: one configuration's result, its TF profile and its environment -> a CSV row of
``kbench.results.schema.SWEEP_COLUMNS``; the table a sweep prints.

``achieved_tflops = flops_tf x multiplier x samples_per_s / 1e12`` with multiplier 1 for inference
and 3 for training (forward + ~2x forward for the backward pass); ``mfu = achieved_tflops /
peak_tflops`` (``kbench.common.devices``; empty on CPU).
"""

from __future__ import annotations

from typing import Any, Iterable

from kbench.common import devices, env
from kbench.errors import UsageError
from kbench.results.schema import significant
from kbench.running.backends import BACKENDS
from kbench.running.plan import Config


class EnvironmentCache:
    """The environment columns of a row (``kbench.common.env``), computed once per backend and
    device; ``device`` holds what each backend's worker announced."""

    def __init__(self):
        self.cache: dict[tuple, dict] = {}
        self.device: dict[str, dict] = {}

    def get(self, backend: str) -> dict:
        dev = self.device.get(backend)
        k = (backend, dev["device"], dev["device_kind"]) if dev else (backend, "", "")
        if k not in self.cache:
            environment = env.environment(k[1] or "", k[2] or None, BACKENDS[backend].version())
            if not dev:
                environment["device"] = environment["device_kind"] = ""
            self.cache[k] = environment
        return self.cache[k]


def make_row(cfg: Config, result: dict, profile: dict, run_id: str, environment: dict,
             peak_override: float | None) -> dict[str, Any]:
    h, w, c = cfg.input_shape
    status = result.get("status", "error")
    device, kind = result.get("device") or environment.get("device", ""), result.get("device_kind") or environment.get("device_kind", "")
    mult = devices.flops_multiplier(cfg.mode)
    flops = profile.get("flops_tf")
    sps = result.get("samples_per_s") if status == "ok" else None
    achieved = flops * mult * sps / 1e12 if (flops and sps) else None
    peak = devices.peak_tflops(device, kind, cfg.precision, peak_override) if device else peak_override
    row = {
        "run_id": run_id, "timestamp": env.timestamp(), "model": cfg.model, "family": cfg.family,
        "input_h": h, "input_w": w, "batch_size": cfg.batch_size, "mode": cfg.mode, "backend": cfg.backend,
        "precision": cfg.precision, "jit": "true" if cfg.jit else "false", "status": status,
        "error": result.get("error", ""),
        "samples_per_s": significant(sps),
        "latency_ms_p50": significant(result.get("latency_ms_p50")), "latency_ms_p90": significant(result.get("latency_ms_p90")),
        "latency_ms_p99": significant(result.get("latency_ms_p99")), "latency_ms_std": significant(result.get("latency_ms_std")),
        "compile_s": significant(result.get("compile_s"), 4), "peak_mem_mb": significant(result.get("peak_mem_mb"), 6),
        "params_trainable": result.get("params_trainable") or profile.get("params_trainable") or "",
        "macs": profile.get("macs") or "", "flops_tf": flops or "",
        "achieved_tflops": significant(achieved), "mfu": significant(achieved / peak) if (achieved and peak) else "",
        **{k: environment.get(k, "") for k in env.ENV_COLUMNS}, "device": device, "device_kind": kind,
        "input_c": c, "variant": cfg.variant_text, "num_classes": cfg.num_classes or "",
        "n_iters": cfg.iters if status == "ok" else "", "warmup": cfg.warmup if status == "ok" else "",
        "cv": significant(result.get("cv"), 4), "latency_ms_mean": significant(result.get("latency_ms_mean")),
        "latency_ms_min": significant(result.get("latency_ms_min")), "peak_tflops": significant(peak) if peak else "",
        "flops_multiplier": mult, "peak_mem_source": result.get("peak_mem_source", ""),
        "model_mem_mb": significant(result.get("model_mem_mb"), 6),
        "n_devices": cfg.n_devices,
        "per_device_batch": "" if cfg.batch_size % cfg.n_devices else cfg.batch_size // cfg.n_devices,
        "samples_per_s_iqr": significant(result.get("samples_per_s_iqr")) if status == "ok" else "",
        "rounds": result.get("rounds", "") if status == "ok" else "",
        "samples_per_s_rounds": result.get("samples_per_s_rounds", "") if status == "ok" else "",
        "other_cpu_frac": significant(result.get("other_cpu_frac"), 3) if status == "ok" else "",
    }
    return row


def summary_rows(rows: Iterable[dict]) -> list[dict]:
    """The table a sweep prints: the model as built ("resnet50 [groups=32]"), then the measurement."""
    from kbench.models import registry
    from kbench.common.humanize import model_label

    def label(row):
        try:
            default = registry.get_spec(row["model"]).default_num_classes
        except UsageError:
            default = None
        classes = row.get("num_classes")
        return model_label(row["model"], row.get("variant"), classes if str(classes) != str(default) else None)

    return [{"model": label(r), "batch": r["batch_size"], "mode": r["mode"], "backend": r["backend"],
             "precision": r["precision"], "jit": r["jit"], "samples/s": r["samples_per_s"],
             "p50_ms": r["latency_ms_p50"], "cv": r["cv"], "status": r["status"]} for r in rows]
