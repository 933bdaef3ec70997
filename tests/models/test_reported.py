"""Every published figure in the registry against the model it describes.

torchvision's meta pattern: the figures live once, in each spec's ``reported``, and this one
test checks them all. ``exact`` figures must match to the unit (params: trainable, or total with
BN moving statistics when ``params_total``; MACs: ``kbench.counting.macs.count_macs``); ``rounded`` ones to
their last printed digit (4.23e9: within 5e6); ``derived`` ones only within their ``tolerance``,
when they have one. Each model is built once per input size and variant its figures name.
"""

import json
import math

import pytest

import kbench
from kbench.counting.layer_walk import count_params
from kbench.counting.macs import count_macs



def _checked(figure) -> bool:
    return figure.exactness in ("exact", "rounded") or figure.tolerance is not None


def _builds():
    """One case per (model, input size, variant) with the figures to check on that build."""
    cases = {}
    for name in kbench.list_models():
        spec = kbench.get_spec(name)
        for figure in filter(_checked, spec.reported):
            size = tuple(figure.input_size or spec.default_input_shape[:2])
            variant = json.dumps(dict(figure.variant), sort_keys=True)
            cases.setdefault((name, size, variant), []).append(figure)
    return [pytest.param(name, size, json.loads(variant), figures,
                         id=f"{name}-{size[0]}x{size[1]}" + (f"-{variant}" if variant != "{}" else ""))
            for (name, size, variant), figures in cases.items()]


def printed_precision(value) -> float:
    """The unit of the last non-zero digit of a printed figure: 4.23e9 -> 1e7, 25_557_032 -> 1."""
    if not float(value).is_integer():
        return 10.0 ** -len(repr(float(value)).split(".")[1])
    number, unit = int(value), 1
    while number and number % (unit * 10) == 0:
        unit *= 10
    return unit


def _agrees(actual, figure_value, figure) -> bool:
    if figure.exactness == "exact":
        return actual == figure_value
    if figure.exactness == "rounded":
        return abs(actual - figure_value) <= printed_precision(figure_value) / 2
    return math.isclose(actual, figure_value, rel_tol=figure.tolerance)


@pytest.mark.parametrize("name, size, variant, figures", _builds())
def test_reported_figures_match_the_build(name, size, variant, figures, build_shapes_only):
    model = build_shapes_only(name, input_shape=size, **variant)  # parameters and MACs read shapes only
    counts = count_params(model)
    macs = count_macs(model)["macs"] if any(f.macs is not None for f in figures) else None
    wrong = []
    for figure in figures:
        if figure.params is not None:
            actual = counts["params_keras_total" if figure.params_total else "params_trainable"]
            if not _agrees(actual, figure.params, figure):
                wrong.append(("params", figure.params, actual, figure.exactness, figure.source))
        if figure.macs is not None and not _agrees(macs, figure.macs, figure):
            wrong.append(("macs", figure.macs, macs, figure.exactness, figure.source))
    assert not wrong, wrong


def test_printed_precision():
    assert printed_precision(4.23e9) == 1e7
    assert printed_precision(25_557_032) == 1
    assert printed_precision(60e6) == 1e7
    assert printed_precision(8.2e6) == 1e5


def test_every_checkable_spec_has_a_checked_figure():
    """No model is left with only unchecked (derived) figures unless the reason is on record."""
    unchecked = [name for name in kbench.list_models()
                 if not any(_checked(f) for f in kbench.get_spec(name).reported)]
    for name in unchecked:
        spec = kbench.get_spec(name)
        assert all(f.convention or f.exactness == "derived" for f in spec.reported), name


def test_registration_validates_exactness_and_primary():
    from architectures._registry import Reported, _check_reported

    with pytest.raises(ValueError, match="exactness must be one of"):
        _check_reported("m", (Reported(params=1, exactness="approx", primary=True),))
    with pytest.raises(ValueError, match="exactly one Reported must be primary, found 0"):
        _check_reported("m", (Reported(params=1, exactness="exact"),))
    with pytest.raises(ValueError, match="found 2"):
        _check_reported("m", (Reported(params=1, exactness="exact", primary=True),
                               Reported(macs=2, exactness="rounded", primary=True)))
    _check_reported("m", ())  # a spec without figures has no primary
