"""``--shard K/N``: the K-th of N deterministic, cost-balanced slices of a sweep's plan.

N hosts (a Slurm job array: ``--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``) each run
one slice; together they cover the plan exactly once, and ``kbench merge`` joins their CSVs.

* **Unit.** A slice holds whole *groups*: the configurations that differ only in batch size
  (``Config.group``, the unit of the sweep's "OOM at batch B -> skip the larger ones" rule).
  Keeping a group on one host keeps that rule and the worker of a model reused within a host;
  the price is that N larger than the number of groups leaves some shards empty.
* **Cost.** A group costs the sum over its configurations of
  ``MACs per image x batch size x flops_multiplier(mode)`` (3 for training, 1 for inference,
  ``kbench.common.devices``), where the MACs come from the analytic counter (``kbench.counting.macs``). The
  TF-profile cache is deliberately *not* used: a cache present on some hosts and absent on
  others would give them different costs, hence different slices, and the union would no longer
  be the plan. The analytic count depends only on the code, so every host computes the same
  numbers; it runs in a CPU-only subprocess (building models in the sweep's parent would
  initialise a framework there and take GPU memory from the workers) and is cached as JSON
  beside the profile cache (``analytic-macs-*.json``, keyed like ``kbench.running.profile_cache``).
* **Balance.** Longest-processing-time-first: groups by decreasing cost (ties in plan order)
  each go to the currently lightest shard (ties to the lowest index). Every shard's total is
  then within the largest group's cost of every other's.
* **Determinism.** The slice depends only on the plan (models, sizes, flags) and the code, never
  on the output file: ``--resume`` of a shard reruns only that shard's missing configurations
  (with ``--retry-failed``, also its ``error``/``timeout`` rows).
* **The counter dies with the sweep**, like the workers (``kbench.running.worker.die_with_parent``):
  a sweep killed with SIGKILL while the costs are counted leaves no process behind. It runs in
  its own session, so a terminal's Ctrl-C reaches only the sweep, which stops it. Testing hook:
  ``KBENCH_FAULT_INJECT="MODEL:*:count=hang"`` (mode ``count`` only: the workers' faults never
  match here) makes the counter hang at that model; any other kind fails its count.
"""

from __future__ import annotations

import heapq
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Hashable, Iterable, Sequence, TypeVar

from kbench.common import devices
from kbench.errors import UsageError
from kbench.running.worker import FAULT_ENV, PARENT_ENV, die_with_parent, fault_for, parse_faults

T = TypeVar("T")
# The cost of a model whose MACs cannot be counted analytically (the same on every host).
FALLBACK_MACS = 10**9
COUNT_TIMEOUT_S = 1800.0


def parse_shard(text: str, what: str = "--shard") -> tuple[int, int]:
    """``"2/5"`` -> (2, 5), with 1 <= K <= N."""
    message = f"{what} {text!r} must be K/N with integers 1 <= K <= N (e.g. 2/5)"
    if not isinstance(text, str):
        raise UsageError(message)
    k_text, slash, n_text = text.strip().partition("/")
    k_text, n_text = k_text.strip(), n_text.strip()
    if not slash or not all(part.isascii() and part.isdigit() for part in (k_text, n_text)):  # not '²'
        raise UsageError(message)
    k, n = int(k_text), int(n_text)
    if n < 1 or not 1 <= k <= n:
        raise UsageError(message)
    return k, n


def check_shard(shard) -> tuple[int, int]:
    """A ``(K, N)`` pair from the Python API, checked like ``--shard K/N``."""
    if (not isinstance(shard, tuple) or len(shard) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) for v in shard)):
        raise UsageError(f"shard {shard!r} must be a pair (K, N) of integers with 1 <= K <= N")
    return parse_shard(f"{shard[0]}/{shard[1]}", "shard")


def assign(units: Sequence[tuple[Hashable, int]], n: int) -> dict[Hashable, int]:
    """``{unit: shard}`` (shards 1..n) for ``(unit, cost)`` pairs given in plan order (LPT)."""
    order = sorted(range(len(units)), key=lambda i: (-units[i][1], i))
    loads = [(0, shard) for shard in range(1, n + 1)]  # a heap of (load, shard)
    heapq.heapify(loads)
    placed = {}
    for i in order:
        unit, cost = units[i]
        load, shard = heapq.heappop(loads)
        placed[unit] = shard
        heapq.heappush(loads, (load + cost, shard))
    return placed


def split(items: Iterable[T], n: int, unit: Callable[[T], Hashable], cost: Callable[[T], int]) -> list[list[T]]:
    """All ``n`` slices of ``items`` (each in the items' order), units kept whole."""
    items = list(items)
    totals: dict[Hashable, int] = {}
    for item in items:
        totals[unit(item)] = totals.get(unit(item), 0) + cost(item)
    placed = assign(list(totals.items()), n)
    slices: list[list[T]] = [[] for _ in range(n)]
    for item in items:
        slices[placed[unit(item)] - 1].append(item)
    return slices


def config_cost(cfg, macs: int) -> int:
    """The estimated cost of one configuration (see the module docstring)."""
    return max(1, int(macs)) * cfg.batch_size * int(devices.flops_multiplier(cfg.mode))


def select(configs: Sequence, shard: tuple[int, int], cache_dir: str | Path | None) -> list:
    """The configurations of shard ``K/N``, in plan order."""
    k, n = shard
    macs = estimate_macs([cfg.request.to_payload() for cfg in configs], cache_dir)
    slices = split(configs, n, unit=lambda c: c.group,
                   cost=lambda c: config_cost(c, macs[_ident(c.request.to_payload())]))
    return slices[k - 1]


# ----------------------------------------------------------------------------- the MAC estimate

def _ident(payload: dict) -> str:
    return json.dumps(payload, sort_keys=True)


def _cache_path(cache_dir: Path, payload: dict) -> Path:
    from kbench.running.profile_cache import cache_key

    h, w, c = payload["input_shape"]
    return cache_dir / f"analytic-macs-{payload['model']}-{h}x{w}x{c}-{cache_key(payload)}.json"


def estimate_macs(payloads: Iterable[dict], cache_dir: str | Path | None) -> dict[str, int]:
    """``{ident: analytic MACs per image}`` for model-request payloads, from the cache or counted
    in one CPU-only subprocess (``python -m kbench.running.shard``)."""
    found: dict[str, int] = {}
    missing: dict[str, dict] = {}
    directory = Path(cache_dir) if cache_dir else None
    for payload in payloads:
        ident = _ident(payload)
        if ident in found or ident in missing:
            continue
        if directory is not None:
            try:
                entry = json.loads(_cache_path(directory, payload).read_text())
                if isinstance(entry.get("macs"), int):
                    found[ident] = entry["macs"]
                    continue
            except (OSError, ValueError, AttributeError):
                pass
        missing[ident] = payload
    if missing:
        counted = _count_in_subprocess(list(missing.values()))
        for (ident, payload), macs in zip(missing.items(), counted):
            found[ident] = macs
            if directory is not None:
                from kbench.common.csvio import write_text_atomic

                try:
                    write_text_atomic(_cache_path(directory, payload),
                                      json.dumps({"request": payload, "macs": macs}, sort_keys=True) + "\n")
                except UsageError as exc:  # an unwritable cache only costs time
                    print(f"kbench: warning: shard cost cache not written: {exc}", file=sys.stderr)
    return found


def _count_in_subprocess(payloads: list[dict]) -> list[int]:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3",
           PARENT_ENV: str(os.getpid())}
    counted, tail = None, ""
    try:
        # On any exception (a signal included) subprocess.run kills the counter before re-raising.
        done = subprocess.run([sys.executable, "-m", "kbench.running.shard"], input=json.dumps(payloads),
                              capture_output=True, text=True, env=env, timeout=COUNT_TIMEOUT_S,
                              start_new_session=True)
        tail = (done.stderr.strip().splitlines() or [""])[-1][:200]
        if done.returncode == 0:
            counted = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        tail = tail or str(exc)[:200]
    if not isinstance(counted, list) or len(counted) != len(payloads):
        raise UsageError(f"--shard: cannot estimate the configurations' costs (analytic MAC count failed: {tail}); "
                         f"every shard must compute the same slices, so nothing was run")
    for payload, macs in zip(payloads, counted):
        if macs is None:
            print(f"kbench: warning: --shard: no analytic MAC count for {payload['model']}; its cost is taken as "
                  f"{FALLBACK_MACS:.0e} MACs per image", file=sys.stderr)
    return [FALLBACK_MACS if macs is None else int(macs) for macs in counted]


def _count_main() -> int:
    """Read a JSON list of request payloads on stdin; print a JSON list of MACs (null: failed)."""
    die_with_parent()
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # library noise goes to stderr
    payloads = json.loads(sys.stdin.read())
    faults = [fault for fault in parse_faults(os.environ.get(FAULT_ENV)) if fault[2] == "count"]
    from kbench.common.quiet import quiet_import

    quiet_import("keras")
    from kbench.counting.macs import count_macs
    from kbench.models.registry import ModelRequest
    from kbench.models.session import shapes_only

    result = []
    for payload in payloads:
        try:
            _inject_fault(payload, faults)
            with shapes_only():
                model = ModelRequest.from_payload(payload).build()
            result.append(int(count_macs(model)["macs"]))
        except Exception as exc:  # noqa: BLE001 - one model that cannot be counted gets the fallback cost
            print(f"kbench: analytic MAC count of {payload.get('model')} failed: {exc}", file=sys.stderr)
            result.append(None)
    proto.write(json.dumps(result) + "\n")
    proto.flush()
    return 0


def _inject_fault(payload: dict, faults) -> None:
    kind = fault_for({"model": payload.get("model"), "batch_size": "*", "mode": "count"}, faults)
    if kind == "hang":  # silently: a write to the pipe of a dead sweep would end it by EPIPE
        while True:
            time.sleep(3600)
    if kind:
        raise RuntimeError(f"simulated {kind} ({FAULT_ENV})")


if __name__ == "__main__":
    sys.exit(_count_main())
