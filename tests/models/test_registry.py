"""Checks run on every registered model (parameterised over the registry).

A new model is covered by registering it. The per-model contract (keras-hub's
``run_backbone_test`` idea), at the model's tiny ``test_input_size`` and built once: a forward
pass with the expected output shape, finite outputs and profiler MACs equal to the analytic
counter's; a save/load round trip with identical outputs; and a backward pass in which every
trainable weight gets a finite gradient (the last two once per structure in the default suite, on
every model under -m slow). The default suite's round trip is in memory (the config through JSON
and safe-mode deserialisation, the same weights); -m slow takes every model through a ``.keras``
file.
"""

import dataclasses
import re

import keras
import numpy as np
import pytest

import kbench
from architectures import MODEL_SPECS
from kbench.counting.macs import count_macs
from kbench.counting.profiling import profile_model

MODELS = kbench.list_models()


def _test_shape(spec):
    if spec.test_input_size is None:
        return tuple(spec.default_input_shape)
    return (*spec.test_input_size, spec.default_input_shape[2])


@pytest.mark.parametrize("name", MODELS)
def test_metadata_is_complete(name):
    spec = kbench.get_spec(name)
    assert spec.family and spec.paper is not None and spec.paper.year > 1980
    assert len(spec.default_input_shape) == 3
    assert spec.min_input_size[0] <= spec.default_input_shape[0]
    assert spec.reported, "every model records its paper's (or a reference's) numbers"
    assert spec.primary_reported is not None and spec.primary_reported.source
    # The default and the test sizes obey the spec's own input rules.
    for size in (spec.default_input_shape[:2], _test_shape(spec)[:2]):
        assert all(side % spec.input_multiple == 0 for side in size), size
        assert size[0] >= spec.min_input_size[0] and size[1] >= spec.min_input_size[1], size


# The deepest siblings of families whose smaller members run the whole contract, and nldf (352x352
# at least): their save/load and backward pass cost 20-30 s each on a loaded 2-core machine (about
# twice the forward pass), so in the default suite they get the forward pass and MAC cross-check
# only; -m slow runs all.
HEAVIEST = {"densenet201", "densenet264", "resnet152", "resnext101_32x8d", "nldf", "faster_rcnn_r50_fpn",
            "faster_rcnn_fcanet50_fpn", "faster_rcnn_dsnet50_a_fpn", "faster_rcnn_dsnet50_b_fpn"}


def _structure(name):
    """What decides a model's layer classes: its builder and its preset, with numbers reduced to
    "1" / "n" and multipliers dropped (depth 50 vs 101, alpha 0.5 vs 1.0 change sizes, not classes;
    groups 1 vs 3 does)."""
    spec = kbench.get_spec(name)

    def reduce(value):
        if isinstance(value, float):
            return "width"  # a multiplier
        if isinstance(value, int) and not isinstance(value, bool):
            return "1" if value == 1 else "n"
        return repr(value)

    return spec.builder, tuple(sorted((k, reduce(v)) for k, v in spec.preset.items() if k != "name"))


def _save_load_representatives():
    """The first model (in natural order: resnet18 before resnet101) of each structure: the
    default suite round-trips each set of layer classes through a .keras file once; the siblings
    do it under -m slow."""
    chosen = {}
    for name in sorted(MODELS, key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)]):
        if name not in HEAVIEST:
            chosen.setdefault(_structure(name), name)
    return set(chosen.values())


SAVE_LOAD = _save_load_representatives()


def _same_test_build(name):
    """Models whose contract is the very same computation: the same builder, preset (the name
    aside) and test input (fcn_r50_d8_synapse is fcn_r50_d8_cityscapes with other default classes,
    and the contract builds both with 3). The first in natural order runs it; the rest under -m slow."""
    spec = kbench.get_spec(name)
    return spec.builder, repr(sorted((k, v) for k, v in spec.preset.items() if k != "name")), _test_shape(spec)


def _repeats():
    first, repeats = {}, set()
    for name in sorted(MODELS, key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)]):
        if first.setdefault(_same_test_build(name), name) != name:
            repeats.add(name)
    return repeats


REPEATS = _repeats()


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVIEST | REPEATS else n
                                  for n in MODELS])
def test_model_contract(name, check_model_contract, check_model_forward):
    """Forward + MAC cross-check on every model; the save/load round trip and the backward pass on
    one model of each structure (``SAVE_LOAD``): a sibling has the same layer classes at other
    sizes, and its gradients run under -m slow (the grouped convolutions of CondenseNet, IGCV3 and
    ShuffleNet V1 compile an XLA kernel per layer on the CPU: 5-12 s of backward pass each)."""
    spec = kbench.get_spec(name)
    model = kbench.build(name, input_shape=_test_shape(spec), num_classes=3)
    if name in SAVE_LOAD or name in HEAVIEST:  # (HEAVIEST: only under -m slow, through a file)
        check_model_contract(model, num_classes=3, through_file=name in HEAVIEST)
    else:
        check_model_forward(model, num_classes=3)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in MODELS if n not in HEAVIEST])
def test_keras_file_round_trip_and_backward_of_every_model(name, check_model_contract):
    spec = kbench.get_spec(name)
    check_model_contract(kbench.build(name, input_shape=_test_shape(spec), num_classes=3), num_classes=3,
                         through_file=True)


def _scale_layer_class():
    """A new class each call (registration is global): multiplies by ``factor``; ``forget``
    leaves the factor out of its config, a classic bug."""

    class Scale(keras.layers.Layer):
        def __init__(self, factor=1.0, forget=False, **kwargs):
            super().__init__(**kwargs)
            self.factor, self.forget = factor, forget

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {**super().get_config(), **({} if self.forget else {"factor": self.factor})}

    return Scale


@pytest.mark.parametrize("through_file", [False, True], ids=["memory", "file"])
def test_the_save_load_round_trip_fails_where_a_saved_file_would(through_file, tmp_path, check_save_load):
    """Both round trips refuse a layer Keras cannot find (not registered) and one whose config
    forgets an argument (outputs differ), and pass the same layer registered and complete."""
    x = np.arange(6, dtype="float32").reshape(2, 3)
    path = tmp_path / "m.keras" if through_file else None

    def model(layer):
        inputs = keras.Input((3,))
        return keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)))

    unregistered = model(_scale_layer_class()(3.0))
    with pytest.raises(TypeError, match="Scale"):
        check_save_load(unregistered, x, [unregistered(x)], path)
    scale = keras.saving.register_keras_serializable("kbench_contract_test")(_scale_layer_class())
    try:
        complete = model(scale(3.0))
        check_save_load(complete, x, [complete(x)], path)
        forgetful = model(scale(3.0, forget=True))
        with pytest.raises(AssertionError):
            check_save_load(forgetful, x, [forgetful(x)], path)
    finally:
        keras.saving.get_custom_objects().pop("kbench_contract_test>Scale")


def test_repeated_builds_are_exact_repeats():
    assert REPEATS and all(_same_test_build(n) in {_same_test_build(m) for m in MODELS if m not in REPEATS}
                           for n in REPEATS)


def test_every_structure_has_a_save_load_representative():
    structures = {_structure(n) for n in MODELS if n not in HEAVIEST}
    assert {_structure(n) for n in SAVE_LOAD} == structures
    assert len(SAVE_LOAD) < len(MODELS) - len(HEAVIEST)  # siblings share a representative


# The detectors run the forward + profiler check in test_faster_rcnn.py (on a smaller detector) and
# their plugin layers run the contract in attention_resnet and fcn: here, under -m slow.
DETECTORS = {"faster_rcnn_r50_fpn", "faster_rcnn_fcanet50_fpn", "faster_rcnn_dsnet50_a_fpn", "faster_rcnn_dsnet50_b_fpn"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in DETECTORS else n
                                  for n in sorted(HEAVIEST)])
def test_forward_pass_of_the_heaviest(name, check_model_forward):
    shape = _test_shape(kbench.get_spec(name))
    check_model_forward(kbench.build(name, input_shape=shape, num_classes=3), num_classes=3)


@pytest.mark.parametrize("name", MODELS)
def test_input_below_minimum_is_rejected(name):
    spec = kbench.get_spec(name)
    h, w = spec.min_input_size
    # (A model that takes any size, min 1x1, is refused at 0 as "not positive".)
    with pytest.raises(kbench.InputSizeError, match="too small" if h > 1 else "must be positive"):
        kbench.build(name, input_shape=(h - 1, w))


@pytest.mark.parametrize("name", [n for n in MODELS if kbench.get_spec(n).input_multiple > 1])
def test_input_multiple_is_checked_before_building(name):
    spec = kbench.get_spec(name)
    h, w = _test_shape(spec)[:2]
    with pytest.raises(kbench.InputSizeError, match=f"multiples of {spec.input_multiple}$"):
        kbench.models.registry.normalize_input_shape(spec, (h, w + spec.input_multiple // 2))


@pytest.mark.parametrize("name, option, message", [
    ("resnet18", dict(depth=19), "depth=19 is not allowed for resnet18: allowed depths 18, 34, 50, 101, 152"),
    ("densenet121", dict(depth=100), "depth=100 is not allowed for densenet121: allowed depths"),
    ("mobilenet_v2", dict(alpha="wide"), "alpha=wide is not allowed for mobilenet_v2"),
    ("shufflenet_v2_x1_0", dict(scale=3), "scale=3 is not allowed for shufflenet_v2_x1_0: allowed scales"),
    ("rfcn", dict(passes=0), "passes=0 is not allowed for rfcn"),
    ("capsnet", dict(routings=0), "routings=0 is not allowed for capsnet"),
])
def test_bad_option_value_is_a_usage_error_naming_it(name, option, message):
    with pytest.raises(kbench.UsageError, match=message) as error:
        kbench.build(name, **option)
    assert not isinstance(error.value, kbench.InputSizeError)


def test_a_builder_bug_is_not_reported_as_bad_input(monkeypatch):
    """Only ConfigError/InputShapeError mean bad input; anything else propagates (no exit 2)."""
    spec = kbench.get_spec("lenet5")

    def broken_builder(input_shape, num_classes, **kwargs):
        raise ValueError("a bug in the builder")

    monkeypatch.setitem(MODEL_SPECS, "lenet5", dataclasses.replace(spec, builder=broken_builder))
    with pytest.raises(ValueError, match="a bug in the builder") as error:
        kbench.build("lenet5")
    assert not isinstance(error.value, kbench.UsageError)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_full_size_profile_ratio_and_cross_check(name, tf_ratio_limit):
    """The same MAC checks at the model's default (paper) input size."""
    spec = kbench.get_spec(name)
    model = kbench.build(name)
    record = profile_model(model, spec.default_input_shape)
    assert record["macs"] == count_macs(model)["macs"]
    ratio = (record["flops_tf"] - record["flops_tf_dilation_padding"]) / (2 * record["macs"])
    assert 1.0 <= ratio <= tf_ratio_limit(model.name), ratio
