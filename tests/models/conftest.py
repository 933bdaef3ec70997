"""The per-model contract shared by the registry-wide test and the family tests' variants.

keras-hub's ``run_backbone_test`` idea: whatever the model, the same checks. A family test
that builds a variant the registry does not list (GoogLeNet with its aux heads, RFCN unrolled)
runs the same contract on it with the ``check_model_contract`` fixture.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import kbench
from kbench.counting.macs import count_macs
from kbench.counting.profiling import profile_model
from kbench.models.session import shapes_only


def _outputs(result):
    return list(result) if isinstance(result, (list, tuple)) else [result]


# The profiler's per-element terms (BN, ReLU6, adds) grow with the share of thin layers: MobileNet V2
# at 0.15x (8-channel layers) reaches 1.10 with a 3-class head and 1.08 at 224 with 1000 classes;
# ShuffleNet V1 0.5x g=3 (bottlenecks of 15-60 channels, three groups) 1.066 with a 3-class head;
# CondenseNet G=C=8 (BN-ReLU over every concatenation feeding 8-group convs) 1.068 and IGCV3-D 0.7
# (BN after each 2-group conv of 12-22 channels) 1.069 at 32x32 with 3 classes, 1.046 / 1.050 at 224.
TF_RATIO_LIMITS = {"mobilenet_v2_0.15": 1.12, "shufflenet_v1_g3_x0.5": 1.08, "condensenet74_c8_g8": 1.08,
                   "igcv3_d_0.7": 1.08}


def tf_ratio_limit(model_name: str) -> float:
    """Upper bound of flops_tf / (2 * MACs) for a built model (by its Keras name)."""
    return TF_RATIO_LIMITS.get(model_name, 1.06)


def check_forward_and_profile(model, shape, num_classes, x):
    outputs = _outputs(model(x, training=False))
    for out in outputs:
        assert out.shape[0] == len(x)
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(out)))
    # Output shape: the symbolic one, and num_classes maps/logits on the last axis of the first.
    assert [tuple(o.shape[1:]) for o in outputs] == [tuple(o.shape[1:]) for o in _outputs(model.output)]
    assert outputs[0].shape[-1] == num_classes

    record = profile_model(model, shape, per_layer=True)
    analytic = count_macs(model)
    assert not analytic["unknown_layers"], analytic["unknown_layers"]
    # Two independent counts of the same convention must agree to the unit.
    assert record["macs"] == analytic["macs"]
    assert record["macs"] > 0
    # The profiler counts 2 per MAC plus bias/BN/pool/element-wise terms on top (and, for dilated
    # convolutions whose rate does not divide the map, the padding TF convolves: set apart).
    ratio = (record["flops_tf"] - record["flops_tf_dilation_padding"]) / (2 * record["macs"])
    assert 1.0 <= ratio <= tf_ratio_limit(model.name), ratio
    rows = record["per_layer"]
    assert sum(r["flops_tf"] for r in rows) == record["flops_tf"]
    assert sum(r["macs"] for r in rows) == record["macs"]
    assert sum(r["params"] for r in rows) == record["params"]
    assert sum(r["mem_access"] for r in rows) == record["mem_access"] > 0
    # The per-layer MACs equal the analytic ones layer by layer.
    by_layer = {r["name"]: r["macs"] for r in rows}
    for layer_name, macs in analytic["per_layer"].items():
        assert by_layer.get(layer_name, 0) == macs, layer_name
    return outputs


def check_save_load(model, x, before, path=None):
    """The model rebuilt from what a ``.keras`` file stores gives identical outputs.

    Without ``path``: in memory, the file's two parts without the disk -- the config serialised to
    JSON text and deserialised in safe mode (what ``load_model`` does: every zoo layer's
    ``get_config`` and registration) and the same weights by position (no zoo layer stores its
    variables its own way, so the file's per-layer store is Keras' one code path). 2-10x cheaper
    than the file (the VGG-style heads write 0.5 GB). With ``path``: through the file itself."""
    if path is None:
        config = json.loads(json.dumps(keras.saving.serialize_keras_object(model)))
        restored = keras.saving.deserialize_keras_object(config, safe_mode=True)
        restored.set_weights(model.get_weights())
    else:
        model.save(path)
        restored = keras.models.load_model(path)
    after = _outputs(restored(x, training=False))
    assert len(after) == len(before)
    for b, a in zip(before, after):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(b), keras.ops.convert_to_numpy(a))


def check_backward(model, x):
    """Every trainable weight gets a non-None, finite gradient from a loss over all outputs."""
    with tf.GradientTape() as tape:
        outputs = _outputs(model(x, training=True))
        # Squares, so that no output's gradient is a constant that a BN layer could cancel.
        loss = sum(tf.reduce_mean(tf.square(tf.cast(o, "float32"))) for o in outputs)
    grads = tape.gradient(loss, model.trainable_variables)
    missing = [v.path for v, g in zip(model.trainable_variables, grads) if g is None]
    assert not missing, missing
    not_finite = [v.path for v, g in zip(model.trainable_variables, grads)
                  if not np.all(np.isfinite(keras.ops.convert_to_numpy(g)))]
    assert not not_finite, not_finite


@pytest.fixture(name="tf_ratio_limit")
def tf_ratio_limit_fixture():
    return tf_ratio_limit


@pytest.fixture(name="check_save_load")
def check_save_load_fixture():
    return check_save_load


@pytest.fixture
def check_model_contract(tmp_path):
    """``check(model, num_classes, through_file=False)``: forward + MAC cross-check, the save/load
    round trip (in memory, or through a ``.keras`` file), backward, on one build."""

    def check(model, num_classes, through_file=False):
        shape = tuple(model.input_shape[1:])
        x = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32")
        outputs = check_forward_and_profile(model, shape, num_classes, x)
        check_save_load(model, x, outputs, tmp_path / f"{model.name}.keras" if through_file else None)
        check_backward(model, x)

    return check


@pytest.fixture
def check_model_forward():
    """``check(model, num_classes)``: the contract's forward pass and MAC cross-check only."""

    def check(model, num_classes):
        shape = tuple(model.input_shape[1:])
        x = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32")
        check_forward_and_profile(model, shape, num_classes, x)

    return check


@pytest.fixture
def build_shapes_only():
    """``kbench.build`` without weight values, for the tests that only count (parameters, analytic
    MACs, conventions): a full-size build 3-5 times faster."""

    def build(name, **kwargs):
        with shapes_only():
            return kbench.build(name, **kwargs)

    return build
