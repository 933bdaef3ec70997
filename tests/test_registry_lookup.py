"""The registry's lookups and request resolution: names, did-you-mean, families, build, resolve().

(Named ``*_lookup`` beside tests/models/test_registry.py, the registry-wide model contract.)
"""

import pytest

import kbench
from kbench.models import registry, selectors


def test_unknown_model_suggests_close_names():
    with pytest.raises(kbench.UnknownModelError, match="did you mean 'resnet50'"):
        kbench.build("resnet05")


def test_list_models_by_family():
    assert kbench.list_models("resnet") == sorted(["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnet50_v1c"])
    with pytest.raises(kbench.UsageError, match="unknown family"):
        kbench.list_models("nope")


def test_model_selectors():
    assert selectors.expand("lenet5, vgg11") == ["lenet5", "vgg11"]
    assert selectors.expand("family:resnet") == kbench.list_models("resnet")
    assert selectors.expand("all") == kbench.list_models()
    with pytest.raises(kbench.UnknownModelError, match="unknown model 'nope'"):
        selectors.expand("lenet5,nope")


def test_num_classes_and_input_size_are_free():
    model = kbench.build("resnet18", input_shape=(96, 128, 3), num_classes=7)
    assert model.output.shape[-1] == 7
    assert model.input.shape[1:] == (96, 128, 3)


def test_resolve_fills_in_the_defaults():
    request = registry.resolve("lenet5")
    assert (request.name, request.family) == ("lenet5", "lenet")
    assert request.input_shape == (32, 32, 1) and request.num_classes == 10
    assert request.variant == {} and request.variant_text == ""
    wider = registry.resolve("resnet18", (96, 128), num_classes=7)
    assert wider.input_shape == (96, 128, 3) and wider.num_classes == 7


def test_resolve_variant_text_is_canonical_and_payloads_round_trip():
    request = registry.resolve("lenet5", input_shape=(36, 36), variant={"activation": "relu"})
    assert request.variant_text == '{"activation": "relu"}'
    assert registry.ModelRequest.from_payload(request.to_payload()) == request


@pytest.mark.parametrize("kwargs, error, fragment", [
    (dict(name="lenet5x"), kbench.UnknownModelError, "did you mean 'lenet5'"),
    (dict(name="lenet5", input_shape=(16, 16)), kbench.InputSizeError, "too small for lenet5"),
    (dict(name="lenet5", input_shape=(32, 32, 1, 1)), kbench.InputSizeError, "must be (height, width[, channels])"),
    (dict(name="lenet5", num_classes=0), kbench.UsageError, "num_classes must be a positive integer"),
    (dict(name="lenet5", num_classes=True), kbench.UsageError, "num_classes must be a positive integer"),
    (dict(name="lenet5", variant={"widht": 2}), kbench.UsageError, "unknown option 'widht' for lenet5"),
])
def test_resolve_rejects_bad_requests(kwargs, error, fragment):
    with pytest.raises(error) as raised:
        registry.resolve(**kwargs)
    assert fragment in str(raised.value)
