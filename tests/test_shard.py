"""``--shard K/N``: deterministic, cost-balanced slices whose union is the plan exactly once."""

from __future__ import annotations

import collections
import json
import random

import pytest

from kbench.running import shard
from kbench.errors import UsageError


@pytest.mark.parametrize("text, expected", [("1/1", (1, 1)), ("2/3", (2, 3)), (" 3/3 ", (3, 3)), ("10/12", (10, 12))])
def test_parse_shard(text, expected):
    assert shard.parse_shard(text) == expected


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "3", "a/b", "1/2/3", "-1/2", "1.0/2", "", "/2", "2/"])
def test_parse_shard_rejects(text):
    with pytest.raises(UsageError, match="K/N"):
        shard.parse_shard(text)


def _random_plan(rng: random.Random):
    """Items (unit, index) with a cost per item: several units of several batch sizes each."""
    items = []
    for unit in range(rng.randint(1, 30)):
        macs = rng.choice([1, 10, 10**3, 4 * 10**8, 10**10])
        for batch in rng.sample([1, 2, 4, 8, 32, 128], rng.randint(1, 4)):
            items.append((f"u{unit}", batch, macs * batch * rng.choice([1, 3])))
    return items


@pytest.mark.parametrize("seed", range(12))
def test_slices_cover_the_plan_once_and_are_balanced(seed):
    rng = random.Random(seed)
    items = _random_plan(rng)
    unit_cost = collections.Counter()
    for unit, _, cost in items:
        unit_cost[unit] += cost
    for n in (1, 2, 3, 5, 8, len(unit_cost) + 2):
        slices = shard.split(items, n, unit=lambda i: i[0], cost=lambda i: i[2])
        assert len(slices) == n
        flat = [item for part in slices for item in part]
        assert sorted(flat) == sorted(items)  # every item exactly once
        for part in slices:
            assert part == [i for i in items if i in part]  # plan order kept within a slice
        owners = {}
        for k, part in enumerate(slices):
            for unit, _, _ in part:
                assert owners.setdefault(unit, k) == k  # a unit (all its batch sizes) stays on one shard
        loads = [sum(i[2] for i in part) for part in slices]
        assert max(loads) - min(loads) <= max(unit_cost.values())  # the LPT bound
        assert shard.split(list(items), n, unit=lambda i: i[0], cost=lambda i: i[2]) == slices  # deterministic


def test_balance_is_by_cost_not_by_count():
    # one expensive unit and six cheap ones: by count a 2-way split would be 4/3 units; by cost the
    # expensive one is alone
    items = [("big", 1, 600)] + [(f"small{i}", 1, 100) for i in range(6)]
    first, second = shard.split(items, 2, unit=lambda i: i[0], cost=lambda i: i[2])
    assert [i[0] for i in first] == ["big"] and len(second) == 6


def _plan(**overrides):
    from kbench.models import registry
    from kbench.running.plan import ResolvedSweep, SweepSpec, plan

    spec = SweepSpec(models=["lenet5", "resnet18"], batch_sizes=[1, 2, 8], modes=["infer", "train"],
                     precisions=["float32", "mixed_bfloat16"], backends=["tensorflow"], jit="off",
                     input_size=(32, 32), **overrides)
    return plan(ResolvedSweep(spec, [registry.resolve(m, spec.input_size) for m in spec.models]))


def test_select_over_a_real_plan(monkeypatch):
    configs = _plan()
    macs = {"lenet5": 416520, "resnet18": 37_000_000}
    monkeypatch.setattr(shard, "estimate_macs", lambda payloads, cache: {
        shard._ident(p): macs[p["model"]] for p in payloads})
    keys = [c.key for c in configs]
    for n in (1, 2, 3, 4, 9):
        parts = [shard.select(configs, (k, n), None) for k in range(1, n + 1)]
        got = [c.key for part in parts for c in part]
        assert sorted(got) == sorted(keys) and len(set(got)) == len(keys)
    # resnet18 costs ~90x lenet5: balanced by cost, each of 2 shards gets half of resnet18's groups
    for k in (1, 2):
        part = shard.select(configs, (k, 2), None)
        assert len({c.group for c in part if c.model == "resnet18"}) == 2


def test_analytic_macs_are_counted_once_then_cached(tmp_path, monkeypatch):
    from kbench.models import registry

    payload = registry.resolve("lenet5", (32, 32)).to_payload()
    got = shard.estimate_macs([payload, dict(payload)], tmp_path)
    assert got == {shard._ident(payload): 416520}  # the LeNet-5 count documented in architectures/lenet.py
    cached = list(tmp_path.glob("analytic-macs-lenet5-32x32x1-*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text())["macs"] == 416520

    def no_subprocess(payloads):
        raise AssertionError("counted again despite the cache")
    monkeypatch.setattr(shard, "_count_in_subprocess", no_subprocess)
    assert shard.estimate_macs([payload], tmp_path) == got


def test_a_failed_count_refuses_to_run(monkeypatch, tmp_path):
    import subprocess

    def broken(*args, **kwargs):
        return subprocess.CompletedProcess(args, 1, stdout="", stderr="ImportError: no keras\n")
    monkeypatch.setattr(subprocess, "run", broken)
    with pytest.raises(UsageError, match="cannot estimate"):
        shard.estimate_macs([{"model": "lenet5", "input_shape": [32, 32, 1], "num_classes": 10, "variant": {}}],
                            tmp_path)


@pytest.mark.parametrize("value", [(0, 2), (3, 2), (1, 0), (True, 2), (1.0, 2), "1/2", (1, 2, 3)])
def test_python_api_shard_is_checked(value):
    with pytest.raises(UsageError, match="shard"):
        shard.check_shard(value)
    assert shard.check_shard((2, 3)) == (2, 3)
