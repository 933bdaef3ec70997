"""Building without weight values (``shapes_only``) and forgetting models (``forget_models``)."""

import gc

import pytest

import kbench
from kbench.counting.layer_walk import count_params
from kbench.counting.macs import count_macs
from kbench.models.session import forget_models, shapes_only


# (Every registered model's published figures are checked on shapes-only builds in
# tests/models/test_reported.py, and `reproduce all` measures on them.)
@pytest.mark.parametrize("name, size", [
    ("resnet18", (32, 32)),  # convolutions, BN moving statistics, a dense head
    ("fcanet50", (32, 32)),  # FcaNet's fixed DCT filters: a non-trainable constant weight
])
def test_a_shapes_only_build_counts_exactly_as_a_full_one_and_fills_no_weight(name, size):
    full = kbench.build(name, input_shape=size)
    expected = (count_params(full), count_macs(full))
    forget_models()
    with shapes_only():
        bare = kbench.build(name, input_shape=size)
    assert (count_params(bare), count_macs(bare)) == expected
    # No weight holds a value (Keras keeps the initializer of a weight made in a StatelessScope
    # that does not initialise: its private ``_value`` stays None).
    assert bare.weights and all(w._value is None for w in bare.weights)


def test_forget_models_lets_a_dropped_model_be_collected():
    import weakref

    model = kbench.build("lenet5")
    ref = weakref.ref(model)
    del model
    forget_models()
    assert ref() is None
    assert gc.get_freeze_count() > 0  # the test process is kbench's own: the frameworks are frozen
