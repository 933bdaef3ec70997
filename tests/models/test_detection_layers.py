"""The detection layers against small hand-computed cases (TF backend; keras.ops only)."""

import keras
import numpy as np

from architectures.layers.detection import (
    DetectionOutput,
    MultiLevelRoIAlign,
    RPNProposals,
    box_iou,
    decode_boxes,
    encode_boxes,
    greedy_nms_keep,
    grid_anchors,
    roi_levels,
    rpn_targets,
)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_anchors_follow_mmdet_base_anchors_and_location_major_order():
    anchors = grid_anchors((1, 2), 4)
    assert anchors.shape == (6, 4)
    r = np.sqrt(0.5)
    np.testing.assert_allclose(anchors[0], [-16 / r, -16 * r, 16 / r, 16 * r], rtol=1e-6)   # ratio 0.5: wide
    np.testing.assert_allclose(anchors[1], [-16, -16, 16, 16])                              # ratio 1
    np.testing.assert_allclose(anchors[4], [4 - 16, -16, 4 + 16, 16])                       # next location


def test_box_coding_round_trip_and_iou():
    anchors = np.array([[0, 0, 10, 10], [5, 5, 25, 15]], "float32")
    targets = np.array([[1, 2, 9, 14], [0, 5, 30, 20]], "float32")
    for stds in ((1, 1, 1, 1), (0.1, 0.1, 0.2, 0.2)):
        deltas = encode_boxes(anchors, targets, stds=stds)
        np.testing.assert_allclose(_np(decode_boxes(anchors, deltas, stds=stds)), targets, atol=1e-4)
    iou = _np(box_iou(anchors[:1], np.array([[5, 0, 15, 10], [20, 20, 30, 30]], "float32")))
    np.testing.assert_allclose(iou, [[50 / 150, 0.0]])


def test_greedy_nms_a_suppressed_box_does_not_suppress():
    # B overlaps A (IoU 0.54) and is dropped; C overlaps B (0.54) but A only 0.25: C stays.
    boxes = np.array([[[0, 0, 10, 10], [3, 0, 13, 10], [6, 0, 16, 10], [0, 0, 10, 10]]], "float32")
    valid = np.array([[True, True, True, False]])
    keep = _np(greedy_nms_keep(boxes, valid, 0.5))
    assert keep.tolist() == [[True, False, True, False]]


def test_roi_levels_follow_the_56_pixel_rule():
    sizes = [32, 111, 112, 224, 448, 1000]
    rois = np.array([[[0, 0, s, s] for s in sizes]], "float32")
    assert _np(roi_levels(rois)).tolist() == [[0, 0, 1, 2, 3, 3]]


def test_roi_align_on_a_linear_map_is_exact():
    # f(y, x) = 4y + x on a 4x4 map at stride 4. RoI (4, 4, 12, 12) px -> grid [0.5, 2.5] (aligned);
    # 2x2 bins of 1 cell, 2x2 samples each: bin centres 1.0 and 2.0, so bins = 4*yc + xc.
    feature = (np.arange(16, dtype="float32").reshape(1, 4, 4, 1))
    rois = np.array([[[4, 4, 12, 12]]], "float32")
    layer = MultiLevelRoIAlign(output_size=2, sampling_ratio=2, strides=(4,))
    out = _np(layer([rois, feature]))
    np.testing.assert_allclose(out[0, 0, :, :, 0], [[5, 6], [9, 10]], atol=1e-5)
    # mmcv's border rule: a sample in [-1, 0) or (W-1, W] clamps to the border, one beyond W is 0.
    # RoI (12, 0, 20, 8) px -> x in [2.5, 4.5], y in [-0.5, 1.5]; right bin samples x = 3.75 (-> 3)
    # and 4.25 (-> 0); top bin samples y = -0.25 (-> 0) and 0.25: (3 + 4 + 0 + 0) / 4 = 1.75;
    # bottom bin y = 0.75, 1.25: (6 + 8) / 4 = 3.5.
    out = _np(layer([np.array([[[12, 0, 20, 8]]], "float32"), feature]))
    np.testing.assert_allclose(out[0, 0, :, 1, 0], [1.75, 3.5], atol=1e-5)


def test_roi_align_picks_each_roi_level_and_batches_images():
    fine = np.zeros((2, 32, 32, 1), "float32")      # a 128x128 image at strides 4 and 8
    coarse = np.ones((2, 16, 16, 1), "float32")
    coarse[1] = 2.0
    rois = np.array([[[0, 0, 16, 16], [0, 0, 120, 120]]] * 2, "float32")  # sqrt(wh) 16 -> level 0, 120 -> 1
    out = _np(MultiLevelRoIAlign(output_size=2, sampling_ratio=1, strides=(4, 8))([rois, fine, coarse]))
    assert out.shape == (2, 2, 2, 2, 1)
    assert np.all(out[:, 0] == 0) and np.all(out[0, 1] == 1) and np.all(out[1, 1] == 2)


def test_detection_output_is_class_aware_and_padded():
    rois = np.array([[[0, 0, 10, 10], [1, 0, 11, 10], [40, 40, 50, 50]]], "float32")
    logits = np.array([[[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0]]], "float32")  # class 0, class 1, background
    deltas = np.zeros((1, 3, 8), "float32")
    layer = DetectionOutput((64, 64), num_classes=2, max_detections=4)
    scores, boxes = (_np(t) for t in layer([rois, logits, deltas]))
    # Rois 0 and 1 overlap (IoU 0.82) but have different classes: both kept; roi 2 is background
    # (its class scores 0.0066 < 0.05) and the low class scores of rois 0/1 are NMSed away.
    top = np.exp(5) / (np.exp(5) + 2)
    np.testing.assert_allclose(scores[0, :2], [[top, 0], [0, top]], rtol=1e-5)
    np.testing.assert_allclose(boxes[0, :2], rois[0, :2], atol=1e-4)
    assert np.all(scores[0, 2:] == 0) and np.all(boxes[0, 2:] == 0)


def test_rpn_proposals_shape_clip_and_config_round_trip():
    rng = np.random.default_rng(0)
    logits = [rng.normal(size=(2, 8, 8, 3)).astype("float32"), rng.normal(size=(2, 4, 4, 3)).astype("float32")]
    deltas = [rng.normal(size=(2, 8, 8, 12)).astype("float32"), rng.normal(size=(2, 4, 4, 12)).astype("float32")]
    layer = RPNProposals((32, 32), strides=(4, 8), pre_nms_top_k=100, num_proposals=50)
    proposals = _np(layer(logits + deltas))
    assert proposals.shape == (2, 50, 4)
    assert proposals.min() >= 0 and proposals.max() <= 32
    clone = RPNProposals.from_config(layer.get_config())
    np.testing.assert_array_equal(_np(clone(logits + deltas)), proposals)


def test_rpn_targets_sample_256_with_at_most_half_positive():
    anchors = grid_anchors((16, 16), 4)
    gt = np.array([[8, 8, 40, 40], [30, 10, 60, 30]], "float32")
    labels, weight, deltas, positive = rpn_targets(anchors, gt)
    assert weight.sum() == 256 and 0 < positive.sum() <= 128
    assert np.all(labels[positive] == 1) and np.all(weight[positive] == 1)
    assert deltas.shape == anchors.shape
