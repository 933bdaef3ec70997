"""MACs(h, w) = a*h*w + b*(h+w) + c: the fit, the size parser, the reference values and fit_model
(the fit-flops command's tests are in tests/test_cli.py)."""

import keras
import pytest

import kbench
from kbench.counting.fit import evaluate, fit_macs, fit_model, parse_sizes, reference_for


def _synthetic(a, b, c, sizes):
    return [((h, w), a * h * w + b * (h + w) + c) for h, w in sizes]


def test_fit_recovers_exact_small_coefficients():
    data = _synthetic(3, 5, 7, [(1, 1), (2, 2), (3, 3)])
    assert fit_macs(data) == pytest.approx((3, 5, 7), abs=1e-9)


def test_fit_recovers_exact_coefficients_with_non_square_sizes():
    # Magnitudes of a real network (NLDF's symbolic global branch): a, b, c all non-zero.
    a, b, c = 2863684.75, -353280.0, 67174656.0
    sizes = [(352, 352), (384, 416), (448, 352), (480, 480)]
    fa, fb, fc = fit_macs(_synthetic(a, b, c, sizes))
    assert fa == pytest.approx(a, rel=1e-12)
    assert fb == pytest.approx(b, rel=1e-9)
    assert fc == pytest.approx(c, rel=1e-9)


def test_fit_accepts_plain_integers_as_square_sizes():
    data = [(s, 10 * s * s + 4) for s in (8, 16, 24)]
    assert fit_macs(data) == pytest.approx((10, 0, 4), abs=1e-6)


@pytest.mark.parametrize("sizes", [[(224, 224)] * 3, [(224, 224), (256, 256)], [(224, 224), (256, 256), (224, 224)]])
def test_fit_needs_three_distinct_sizes(sizes):
    with pytest.raises(kbench.UsageError, match="at least 3 distinct"):
        fit_macs([(s, 1.0) for s in sizes])


def test_parse_sizes():
    assert parse_sizes("224,256x320, 288") == [(224, 224), (256, 320), (288, 288)]
    assert parse_sizes("64,96,64X96,64") == [(64, 64), (64, 96), (96, 96)]  # sorted, de-duplicated
    for bad in ("224,abc,256", "224,,256", "224,256,-3", "224x,256,288", "1.5,2,3"):
        with pytest.raises(kbench.UsageError, match="cannot parse|must be positive"):
            parse_sizes(bad)
    with pytest.raises(kbench.UsageError, match="at least 3 distinct"):
        parse_sizes("224,224,256")
    with pytest.raises(kbench.UsageError, match="too small"):
        parse_sizes("16,64,96", min_size=(32, 32))


def test_reference_expressions_evaluate():
    assert evaluate("412448 + 112*b", b=1) == 412560
    assert evaluate("k*(49845.5*n + 24923.75)", k=2, n=3) == 2 * (49845.5 * 3 + 24923.75)
    assert evaluate(958966.984375) == 958966.984375
    with pytest.raises(ValueError):
        evaluate("__import__('os')")
    ref = reference_for("ucf_bn")
    assert ref["seed"]["a"] == 613314 + 1080 and ref["corrected"]["a"] == 613134 + 900
    assert ref["corrected"]["params"] == 29436228
    assert reference_for("resnet18") is None


def test_fit_model_on_a_plain_cnn_gives_no_border_or_constant_beyond_the_head():
    # ResNet-18 ("same" padding, global pool): only the final Dense on the pooled vector is a
    # constant (512 x classes), and no term scales with h + w.
    result = fit_model("resnet18", "64,96,64x128", counter="analytic", num_classes=10)
    keras.backend.clear_session()
    assert result["fit"]["b"] == pytest.approx(0, abs=1e-3)
    assert result["fit"]["c"] == pytest.approx(512 * 10, abs=1e-2)
    assert result["max_residual"] < 1.0  # the quadratic form is exact
    assert "reference" not in result and "fit_seed_convention" not in result


def test_fit_model_resolves_every_size_before_measuring(monkeypatch):
    from kbench.counting import fit

    def must_not_run(*args, **kwargs):
        raise AssertionError("measured before the request was validated")

    monkeypatch.setattr(fit, "measure", must_not_run)
    with pytest.raises(kbench.UsageError, match="unknown option 'widht' for lenet5"):
        fit_model("lenet5", "32,40,48", counter="analytic", widht=2)
    with pytest.raises(kbench.UsageError, match="num_classes must be a positive integer"):
        fit_model("lenet5", [32, 40, (40, 48)], num_classes=-1)
    requests = fit.resolve_sizes("lenet5", [32, 40, (40, 48)], num_classes=3)
    assert [r.input_shape for r in requests] == [(32, 32, 1), (40, 40, 1), (40, 48, 1)]
    assert {r.num_classes for r in requests} == {3}
