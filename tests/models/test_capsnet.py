"""CapsNet: dynamic routing against the paper's procedure, capsule lengths, the routing MAC rule.

The 8.2M / 6.8M parameter figures (with and without the decoder) are Reported figures, checked
by tests/models/test_reported.py.
"""

import keras
import numpy as np
import pytest

import kbench
from kbench.counting.macs import count_macs
from kbench.counting.profiling import profile_model


def _numpy_routing(u, w, num_capsules, capsule_dim, routings):
    """Procedure 1 of Sabour et al., written directly from the paper with numpy."""
    def squash(s):
        n2 = (s ** 2).sum(-1, keepdims=True)
        return n2 / (1 + n2) * s / np.sqrt(n2 + 1e-7)

    n = u.shape[1]
    u_hat = np.einsum("bni,nio->bno", u, w).reshape(u.shape[0], n, num_capsules, capsule_dim)
    b = np.zeros(u_hat.shape[:3])
    for r in range(routings):
        c = np.exp(b) / np.exp(b).sum(-1, keepdims=True)
        v = squash((c[..., None] * u_hat).sum(1))
        if r < routings - 1:
            b = b + (u_hat * v[:, None]).sum(-1)
    return v


@pytest.mark.parametrize("routings", [1, 3])
def test_capsule_routing_matches_the_paper_procedure(routings):
    from architectures.layers.capsule import CapsuleRouting

    rng = np.random.default_rng(0)
    u = rng.normal(size=(2, 12, 4)).astype("float32")
    layer = CapsuleRouting(3, 5, routings=routings)
    v = keras.ops.convert_to_numpy(layer(u))
    expected = _numpy_routing(u, keras.ops.convert_to_numpy(layer.kernel), 3, 5, routings)
    np.testing.assert_allclose(v, expected, rtol=1e-4, atol=1e-6)


def test_capsnet_lengths_are_in_unit_interval():
    model = kbench.build("capsnet")
    rng = np.random.default_rng(0)
    lengths, reconstruction = model(rng.random((4, 28, 28, 1)).astype("float32"))
    lengths = keras.ops.convert_to_numpy(lengths)
    assert lengths.shape == (4, 10) and tuple(reconstruction.shape) == (4, 28, 28, 1)
    assert np.all((lengths >= 0) & (lengths <= 1))
    # Long capsules too: scaled-up weights drive lengths towards (but never past) 1.
    from architectures.layers.capsule import CapsuleLength, CapsuleRouting

    caps = CapsuleRouting(10, 16)(rng.normal(scale=50.0, size=(4, 1152, 8)).astype("float32"))
    lengths = keras.ops.convert_to_numpy(CapsuleLength()(caps))
    assert np.all((lengths >= 0) & (lengths <= 1 + 1e-6)) and lengths.max() > 0.9


def test_capsnet_mac_rule_counts_prediction_and_routing():
    model = kbench.build("capsnet", decoder=False)
    macs = count_macs(model)["per_layer"]["digitcaps"]
    pairs = 1152 * 10 * 16
    assert macs == pairs * 8 + 3 * pairs + 2 * pairs  # u_hat, 3 weighted sums, 2 agreement updates
    record = profile_model(model, (28, 28, 1), per_layer=True)
    by_layer = {row["name"]: row["macs"] for row in record["per_layer"]}
    assert by_layer["digitcaps"] == macs
    assert "Einsum" not in record["uncounted_ops"]


def test_capsnet_builds_at_its_minimum_size():
    model = kbench.build("capsnet", input_shape=(17, 17))
    assert model.get_layer("digitcaps").kernel.shape == (32, 8, 160)
    with pytest.raises(kbench.InputSizeError):
        kbench.build("capsnet", input_shape=(16, 16))
