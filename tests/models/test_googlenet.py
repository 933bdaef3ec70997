"""GoogLeNet: the paper's inference network, its auxiliary heads, and the torchvision layout."""

import pytest

import kbench
from kbench.layer_walk import count_params


def test_paper_figure_gap_is_explained():
    googlenet = kbench.get_spec("googlenet")
    # 2.95% above the paper's Table 1 column sum (6,797.7K): outside 1%, so the metadata must say why.
    assert abs(googlenet.primary_reported.params / 6_797_700 - 1) > 0.01
    assert any("6,797.7K" in note and "conv1" in note for note in googlenet.notes)


def test_googlenet_aux_heads_are_a_training_option():
    spec = kbench.get_spec("googlenet")
    assert "aux_logits" not in spec.preset  # off by default: inference profiles exclude them
    training = kbench.build("googlenet", aux_logits=True)
    assert len(training.outputs) == 3 and all(tuple(o.shape) == (None, 1000) for o in training.outputs)
    assert count_params(training)["params_trainable"] == 13_378_280  # 6,998,552 + 2 heads (3,188,840 and 3,190,888)
    torchvision = kbench.build("googlenet", aux_logits=True, torchvision_layout=True)
    assert count_params(torchvision)["params_trainable"] == 13_004_888  # reference_numbers.md §1.4
    # The paper's 5x5/3 aux pool needs a 5x5 map after inception 4a (input >= 65).
    with pytest.raises(kbench.InputSizeError):
        kbench.build("googlenet", input_shape=(64, 64), aux_logits=True)


def test_torchvision_layout_total_params():
    """Keras' total (BN moving statistics included) of the torchvision layout; the trainable count
    is its Reported figure. Parameters do not depend on the input size here (global pooling)."""
    model = kbench.build("googlenet", input_shape=(64, 64), torchvision_layout=True)
    assert count_params(model)["params_total"] == 6_639_464


@pytest.mark.parametrize("options", [{"aux_logits": True},
                                     pytest.param({"aux_logits": True, "torchvision_layout": True},
                                                  marks=pytest.mark.slow)])
def test_aux_head_variants_meet_the_model_contract(options, check_model_contract):
    """Three outputs, custom pooling: the registry-wide contract on the training variant."""
    check_model_contract(kbench.build("googlenet", input_shape=(65, 65), num_classes=10, **options), num_classes=10)
