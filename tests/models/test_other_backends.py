"""The families with layers of their own run their forward pass on Keras' other backends (their
layers use ``keras.ops`` only): one process per backend and tier runs every family's check, so a
backend's import (seconds) is paid once. Each family has one backend in the default suite and the
other under -m slow (CondenseNet on JAX under -m extra_slow: its index layers run op by op,
eagerly, for minutes on 2 cores). JAX itself runs in the default suite's sweeps, multi-device and
multi-process tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# family: the model, its build options, its input batch, the shape of its first output (every output
# must be finite), and the tier of each backend (None: the default suite).
FAMILIES = {
    "condensenet": ("condensenet74_c4_g4", {"num_classes": 5}, (2, 32, 32, 3), (2, 5),
                    {"torch": None, "jax": "extra_slow"}),
    "igc": ("igcv3_d", {"num_classes": 5}, (2, 32, 32, 3), (2, 5), {"torch": None, "jax": "slow"}),
    "nasnet": ("nasnet_a_mobile", {"num_classes": 5}, (2, 32, 32, 3), (2, 5), {"torch": None, "jax": "slow"}),
    "fcn": ("fcn_r50_d8_synapse", {}, (1, 64, 64, 3), (1, 8, 8, 9), {"torch": None, "jax": "slow"}),
    # The detector's predict: NMS keeps max_detections boxes, scores then boxes. (On JAX, predict
    # compiles the whole detector with XLA: 25 s on 2 cores, against 10 s on torch.)
    "faster_rcnn": ("faster_rcnn_r50_fpn", {"num_classes": 3, "num_proposals": 50, "max_detections": 10},
                    (1, 64, 64, 3), (1, 10, 3), {"torch": None, "jax": "slow"}),
}

# Run in the other backend's process: each family's model built and called, one JSON line each.
SCRIPT = """
import json, sys, traceback
import keras, numpy as np, kbench
for family, (name, options, batch, expected) in json.loads(sys.argv[1]).items():
    try:
        model = kbench.build(name, input_shape=tuple(batch[1:]), **options)
        out = model.predict(np.ones(batch, "float32"), verbose=0)
        outs = [keras.ops.convert_to_numpy(o) for o in (out if isinstance(out, (list, tuple)) else [out])]
        result = {"shape": list(outs[0].shape), "finite": all(bool(np.isfinite(o).all()) for o in outs)}
    except Exception:
        result = {"error": traceback.format_exc()[-2000:]}
    print(json.dumps({family: result}), flush=True)
"""


def _groups():
    groups: dict[tuple[str, str | None], list[str]] = {}
    for family, (*_, tiers) in FAMILIES.items():
        for backend, tier in tiers.items():
            groups.setdefault((backend, tier), []).append(family)
    return [pytest.param(backend, families, marks=[getattr(pytest.mark, tier)] if tier else [],
                         id=f"{backend}-{tier or 'default'}") for (backend, tier), families in sorted(
                             groups.items(), key=lambda item: (item[0][0], item[0][1] or ""))]


@pytest.mark.parametrize("backend, families", _groups())
def test_forward_pass_on_another_backend(backend, families):
    checks = {family: FAMILIES[family][:4] for family in families}
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(checks)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-2000:]
    results = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            results.update(json.loads(line))
    assert sorted(results) == sorted(families), done.stderr[-2000:]
    for family in families:
        expected = list(FAMILIES[family][3])
        assert results[family] == {"shape": expected, "finite": True}, (family, results[family])
