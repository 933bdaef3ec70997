"""A sweep's rows: one configuration's result, its TF profile and its environment -> a CSV row of
``kbench.results.schema.SWEEP_COLUMNS``; the table a sweep prints.

``achieved_tflops = flops_tf x multiplier x samples_per_s / 1e12`` with multiplier 1 for inference
and 3 for training (forward + ~2x forward for the backward pass); ``mfu = achieved_tflops /
peak_tflops`` (``kbench.common.devices``; empty on CPU).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from kbench.common import devices, env
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


SUMMARY_COLUMNS = ("model", "batch", "mode", "backend", "precision", "jit", "params", "GMACs", "samples/s",
                   "p50 ms", "cv", "status")


def _three(value) -> str:
    """Three significant digits, one style for every number of the table ('' when there is none)."""
    from kbench.common.humanize import human_number

    return human_number(value)


def summary_rows(rows: Iterable[dict]) -> list[dict]:
    """The table a sweep prints (``SUMMARY_COLUMNS``): the model as built ("resnet50 [groups=32]"),
    params and GMACs per image as timm's benchmark prints them, then the measurement, every
    number with three significant digits."""
    from kbench.common.humanize import model_label
    from kbench.results.schema import default_num_classes

    def label(row):
        classes = str(row.get("num_classes") or "")
        shown = classes if classes and classes != default_num_classes(row["model"]) else None
        return model_label(row["model"], row.get("variant"), shown)

    def gmacs(row):
        try:
            return _three(float(row["macs"]) / 1e9)
        except (KeyError, TypeError, ValueError):
            return ""

    return [{"model": label(r), "batch": r["batch_size"], "mode": r["mode"], "backend": r["backend"],
             "precision": r["precision"], "jit": r["jit"], "params": r.get("params_trainable", ""), "GMACs": gmacs(r),
             "samples/s": _three(r["samples_per_s"]), "p50 ms": _three(r["latency_ms_p50"]), "cv": _three(r["cv"]),
             "status": r["status"]} for r in rows]


def noisy_rows(rows: Iterable[dict], threshold: float) -> list[tuple[dict, float]]:
    """``ok`` rows whose rounds are too noisy to show a change of ``threshold`` (e.g. compare's 10%):
    a round's throughput is the mean of ``n_iters`` steps whose spread is ``cv``, so it varies by
    about cv/sqrt(n_iters); more than half the threshold and two runs' rounds overlap for a real
    change of that size. Returns (row, that relative spread), noisiest first."""
    found = []
    for row in rows:
        try:
            spread = float(row["cv"]) / math.sqrt(int(row["n_iters"]))
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            continue
        if row.get("status") == "ok" and spread > threshold / 2:
            found.append((row, spread))
    return sorted(found, key=lambda item: -item[1])
