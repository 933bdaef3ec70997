"""Faster R-CNN R50-FPN presets: exact params, the mmengine MACs at 800x1088, outputs, profiler
blind spots, save/load of the model class, the training step and other backends."""

import math

import keras
import numpy as np
import pytest

import kbench
from architectures.faster_rcnn import FasterRCNN
from kbench.counting.macs import count_macs
from kbench.counting.profiling import profile_model

PRESETS = {
    "faster_rcnn_r50_fpn": (41_753_056, None),
    "faster_rcnn_fcanet50_fpn": (44_268_000, 44.268e6),
    "faster_rcnn_dsnet50_a_fpn": (45_301_987, 45.302e6),
    "faster_rcnn_dsnet50_b_fpn": (43_565_392, 43.565e6),
}


@pytest.mark.parametrize("name", PRESETS)
def test_exact_params_round_to_the_readme(name, build_shapes_only):
    expected, readme = PRESETS[name]
    model = build_shapes_only(name, input_shape=(128, 128, 3))
    params = sum(math.prod(v.shape) for v in model.trainable_weights)
    assert params == expected == kbench.get_spec(name).primary_reported.params
    if readme is not None:
        assert round(params / 1e3) * 1e3 == readme
    else:
        assert round(params / 1e4) * 1e4 == 41.75e6  # the README's detail block, "41.75M"


def test_mmengine_macs_at_800x1088_with_1000_proposals(build_shapes_only):
    """Under mmengine's rules: backbone 71.28G + FPN 49.32G + RPN 43.02G + box head 14.30G = 177.93G
    (conv/linear MACs + 2 per BN element + 1 per nearest-upsampled element)."""
    model = build_shapes_only("faster_rcnn_r50_fpn")
    counted = count_macs(model)
    bn_terms = sum(2 * math.prod(l.output.shape[1:]) for l in model.layers
                   if isinstance(l, keras.layers.BatchNormalization))
    upsampling = sum(math.prod(l.output.shape[1:]) for l in model.layers if isinstance(l, keras.layers.UpSampling2D))
    assert counted["macs"] + bn_terms + upsampling == pytest.approx(177.93e9, rel=5e-4)
    box_head = sum(v for k, v in counted["per_layer"].items() if k.startswith("bbox_"))
    assert box_head == 1000 * (12544 * 1024 + 1024 * 1024 + 1024 * 81 + 1024 * 320)


@pytest.fixture(scope="module")
def small_detector():
    return kbench.build("faster_rcnn_r50_fpn", input_shape=(128, 128, 3), num_classes=3)


def test_outputs_and_profiler_blind_spots(small_detector):
    shapes = [tuple(o.shape[1:]) for o in small_detector.outputs]
    anchors = 3 * (32 * 32 + 16 * 16 + 8 * 8 + 4 * 4 + 2 * 2)
    assert shapes == [(100, 3), (100, 4), (anchors,), (anchors, 4), (1000, 4), (1000, 4), (1000, 12)]
    record = profile_model(small_detector, (128, 128, 3))
    assert record["macs"] == count_macs(small_detector)["macs"]
    # NMS (a loop) and top-k selection are not in any FLOP count: listed, not a silent 0.
    assert "TopKV2" in record["uncounted_ops"]
    assert any("While" in op for op in record["uncounted_ops"])
    # RoIAlign's bilinear sampling and the proposal selection gather at computed positions.
    assert any(op.endswith("[computed indices]") for op in record["uncounted_ops"])


def test_save_load_keeps_the_training_model_class(small_detector, tmp_path):
    small_detector.save(tmp_path / "detector.keras")
    restored = keras.models.load_model(tmp_path / "detector.keras")
    assert isinstance(restored, FasterRCNN)


def test_train_step_as_the_sweep_builds_it(small_detector):
    """kbench's train mode: compile with its loss, Keras' train_step; the detector's own
    compute_loss (RPN + RCNN losses on synthetic boxes) replaces the zero-target MSE."""
    from kbench.running.timing import build_step, make_data

    x, y, loss = make_data(small_detector, 2, "train")
    step, sync = build_step(small_detector, "train", False, x, y, loss)
    logs = step()
    sync(logs)
    first = float(np.asarray(logs["loss"]))
    assert np.isfinite(first) and first > 0.1  # classification losses start near log(classes)
