"""FCN R50-D8 presets: exact params, the mmengine MAC figures, outputs and the aux head.

Params do not depend on the input size for these nets, so each preset is built at 64x64. The
mmengine figures (mmseg's get_flops) are conv MACs + 2 per BN output element; kbench's ``macs``
are the conv part, so the BN term is summed here by hand over the model's BatchNormalization
layers (symbolic build at full size: no forward pass).
"""

import math

import keras
import pytest

import kbench
from architectures.fcn import fcn_params
from kbench.counting.macs import count_macs

PRESETS = [f"fcn_{b}_d8_{d}" for d in ("cityscapes", "synapse") for b in ("r50", "fcanet50", "dsnet50_a", "dsnet50_b")]


def _trainable(model):
    return sum(math.prod(v.shape) for v in model.trainable_weights)


@pytest.mark.parametrize("name", PRESETS)
def test_exact_params_and_readme_rounding(name, build_shapes_only):
    spec = kbench.get_spec(name)
    model = build_shapes_only(name, input_shape=(64, 64, 3))
    params = _trainable(model)
    backbone, dataset = name[len("fcn_"):].split("_d8_")
    assert params == fcn_params(dataset, backbone) == spec.primary_reported.params
    readme = next(r for r in spec.reported if "README" in r.source)
    # README prints two decimals in millions; the two Synapse rows in the notes do not round.
    if name not in ("fcn_fcanet50_d8_synapse", "fcn_dsnet50_a_d8_synapse"):
        assert round(params / 1e6, 2) == pytest.approx(readme.params / 1e6)
    assert model.output.shape[1:] == (8, 8, spec.default_num_classes)


@pytest.mark.parametrize("name, expected", [("fcn_r50_d8_cityscapes", 395.764e9), ("fcn_r50_d8_synapse", 197.861e9),
                                            ("fcn_fcanet50_d8_cityscapes", 395.91e9)])
def test_mmengine_macs_at_full_size(name, expected, build_shapes_only):
    """The mmengine convention at the dataset's size (no aux head, logits at 1/8), checked against
    the sum computed here by hand (conv MACs + 2 per BN output element) and the configs' figure;
    FcaNet adds its pooling of each map to the DCT grid (1 per input element)."""
    from kbench.counting.conventions import count

    model = build_shapes_only(name)
    counted = count("mmengine", model).total
    bn_terms = sum(2 * math.prod(layer.output.shape[1:]) for layer in model.layers
                   if isinstance(layer, keras.layers.BatchNormalization))
    if "fcanet" not in name:
        assert counted == count_macs(model)["macs"] + bn_terms
    assert counted == pytest.approx(expected, rel=5e-4)


def test_aux_head_and_upsampling_options():
    model = kbench.build("fcn_r50_d8_synapse", input_shape=(64, 64, 3), aux_head=True, upsample_logits=True)
    assert [tuple(o.shape[1:]) for o in model.outputs] == [(64, 64, 9), (64, 64, 9)]
    # Aux FCNHead: 3x3 conv 1024 -> 256 + BN + 1x1 classifier with bias.
    assert _trainable(model) == 47_127_913 + 1024 * 9 * 256 + 512 + 257 * 9


def test_dilated_backbone_keeps_stride_8_and_contracts_the_first_dilation():
    model = kbench.build("fcn_r50_d8_synapse", input_shape=(64, 64, 3))
    rates = {l.name: l.dilation_rate for l in model.layers if l.name.endswith("_2_conv")}
    assert rates["conv3_block1_2_conv"] == (1, 1)
    assert rates["conv4_block1_2_conv"] == (1, 1) and rates["conv4_block2_2_conv"] == (2, 2)
    assert rates["conv5_block1_2_conv"] == (2, 2) and rates["conv5_block3_2_conv"] == (4, 4)
