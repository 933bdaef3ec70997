"""Two-stage detection layers (Faster R-CNN, mmdet conventions), with static shapes.

Backend-agnostic (``keras.ops`` only) so that the detector runs on TensorFlow, JAX and torch,
and every shape is fixed by the input size and the configured counts (proposals, detections):
the graph traces once at a fixed input, which the TF profiler and XLA need. Variable-length
results (boxes kept by NMS) are padded to the fixed count with score 0 (or -inf inside).

* ``grid_anchors``: mmdet ``AnchorGenerator`` (center offset 0, scales x ratios per location);
* ``decode_boxes`` / ``encode_boxes``: mmdet ``DeltaXYWHBBoxCoder`` (means 0, configurable stds);
* ``box_iou`` / ``greedy_nms_keep``: pairwise IoU and greedy NMS as a fixed-length loop;
* ``RPNProposals``: per-level top-k, decoding, per-level NMS, the best ``num_proposals``;
* ``MultiLevelRoIAlign``: mmcv ``RoIAlign(aligned=True)`` over FPN levels assigned by
  ``floor(log2(sqrt(wh) / 56))``, with a fixed number of samples per bin;
* ``DetectionOutput``: per-class box decoding, score threshold, class-aware NMS, top detections.

None of these does multiply-accumulate work in the conv/matmul sense: IoU, bilinear sampling and
box arithmetic are element-wise (no MatMul ops, so the profiler and the analytic counter agree).
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

# mmdet clamps exp(dw) at this ratio (wh_ratio_clip = 16 / 1000).
MAX_LOG_RATIO = abs(math.log(16 / 1000))


def grid_anchors(feature_size, stride, *, scales=(8,), ratios=(0.5, 1.0, 2.0)) -> np.ndarray:
    """(H*W*A, 4) anchors (x1, y1, x2, y2), location-major like a NHWC head output flattened."""
    h, w = feature_size
    ratios = np.asarray(ratios, dtype=np.float64)
    h_ratios = np.sqrt(ratios)
    w_ratios = 1.0 / h_ratios
    scales = np.asarray(scales, dtype=np.float64)
    ws = (stride * w_ratios[:, None] * scales[None, :]).reshape(-1)
    hs = (stride * h_ratios[:, None] * scales[None, :]).reshape(-1)
    base = np.stack([-0.5 * ws, -0.5 * hs, 0.5 * ws, 0.5 * hs], axis=-1)  # centred on (0, 0)
    shift_x, shift_y = np.meshgrid(np.arange(w) * stride, np.arange(h) * stride)
    shifts = np.stack([shift_x, shift_y, shift_x, shift_y], axis=-1).reshape(-1, 1, 4)
    return (shifts + base[None]).reshape(-1, 4).astype("float32")


def decode_boxes(anchors, deltas, *, stds=(1.0, 1.0, 1.0, 1.0), image_size=None):
    """Apply (dx, dy, dw, dh) deltas to (x1, y1, x2, y2) boxes; clip to ``image_size`` (h, w)."""
    ax1, ay1, ax2, ay2 = (anchors[..., i] for i in range(4))
    aw, ah = ax2 - ax1, ay2 - ay1
    acx, acy = ax1 + 0.5 * aw, ay1 + 0.5 * ah
    dx, dy, dw, dh = (deltas[..., i] * stds[i] for i in range(4))
    dw = ops.clip(dw, -MAX_LOG_RATIO, MAX_LOG_RATIO)
    dh = ops.clip(dh, -MAX_LOG_RATIO, MAX_LOG_RATIO)
    cx, cy = acx + dx * aw, acy + dy * ah
    w, h = aw * ops.exp(dw), ah * ops.exp(dh)
    boxes = [cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h]
    if image_size is not None:
        limits = (image_size[1], image_size[0], image_size[1], image_size[0])
        boxes = [ops.clip(b, 0.0, float(limit)) for b, limit in zip(boxes, limits)]
    return ops.stack(boxes, axis=-1)


def encode_boxes(anchors, targets, *, stds=(1.0, 1.0, 1.0, 1.0)):
    """The inverse of ``decode_boxes``: deltas that move ``anchors`` onto ``targets``."""
    def centre(b):
        w, h = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
        return b[..., 0] + 0.5 * w, b[..., 1] + 0.5 * h, ops.maximum(w, 1e-6), ops.maximum(h, 1e-6)

    acx, acy, aw, ah = centre(anchors)
    tcx, tcy, tw, th = centre(targets)
    deltas = [(tcx - acx) / aw, (tcy - acy) / ah, ops.log(tw / aw), ops.log(th / ah)]
    return ops.stack([d / s for d, s in zip(deltas, stds)], axis=-1)


def box_iou(a, b):
    """Pairwise IoU of (..., N, 4) and (..., M, 4) boxes -> (..., N, M)."""
    a = ops.expand_dims(a, -2)
    b = ops.expand_dims(b, -3)
    inter_w = ops.maximum(ops.minimum(a[..., 2], b[..., 2]) - ops.maximum(a[..., 0], b[..., 0]), 0.0)
    inter_h = ops.maximum(ops.minimum(a[..., 3], b[..., 3]) - ops.maximum(a[..., 1], b[..., 1]), 0.0)
    inter = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / ops.maximum(area_a + area_b - inter, 1e-6)


def greedy_nms_keep(boxes, valid, iou_threshold):
    """Greedy NMS on boxes already sorted by descending score: (N, K, 4), (N, K) bool -> keep mask.

    A box is dropped when a kept box earlier in the order overlaps it by more than the threshold
    (mmcv's ``nms``). A fixed K-step loop, so shapes stay static on every backend.
    """
    num = boxes.shape[1]
    iou = box_iou(boxes, boxes)
    later = ops.arange(num)[None, :]

    def step(i, keep):
        overlaps = ops.take(iou, i, axis=1) > iou_threshold               # (N, K)
        active = ops.expand_dims(ops.take(keep, i, axis=1), -1)           # (N, 1)
        suppressed = ops.logical_and(ops.logical_and(overlaps, active), later > i)
        return ops.logical_and(keep, ops.logical_not(suppressed))

    return ops.fori_loop(0, num, step, ops.cast(valid, "bool"))


def _top_k_rows(values, k):
    """Top-k along the last axis (sorted): values and indices."""
    return ops.top_k(values, k=k, sorted=True)


def _gather_rows(tensor, indices):
    """(N, M, ...) gathered at (N, K) indices along axis 1."""
    expand = indices
    for _ in range(len(tensor.shape) - 2):
        expand = ops.expand_dims(expand, -1)
    return ops.take_along_axis(tensor, expand, axis=1)


@keras.saving.register_keras_serializable(package="kbench")
class RPNProposals(keras.layers.Layer):
    """mmdet ``RPNHead.predict_by_feat``: the best ``num_proposals`` boxes per image.

    Inputs: per-level objectness logits (N, H, W, A) then per-level deltas (N, H, W, 4A), levels
    finest first. Per level: the ``pre_nms_top_k`` best anchors, decoded and clipped; NMS at
    ``iou_threshold`` within each level (mmdet's ``batched_nms`` with level ids); then the
    ``num_proposals`` best over all levels. Output (N, num_proposals, 4), no gradient (mmdet
    detaches proposals). Padding rows (fewer boxes survive) repeat low-scored boxes.
    """

    def __init__(self, image_size, strides=(4, 8, 16, 32, 64), scales=(8,), ratios=(0.5, 1.0, 2.0),
                 pre_nms_top_k=1000, iou_threshold=0.7, num_proposals=1000, **kwargs):
        super().__init__(**kwargs)
        self.image_size = tuple(int(s) for s in image_size)
        self.strides = tuple(int(s) for s in strides)
        self.scales = tuple(float(s) for s in scales)
        self.ratios = tuple(float(r) for r in ratios)
        self.pre_nms_top_k = int(pre_nms_top_k)
        self.iou_threshold = float(iou_threshold)
        self.num_proposals = int(num_proposals)

    def call(self, inputs):
        levels = len(self.strides)
        objectness, deltas = inputs[:levels], inputs[levels:]
        boxes, scores, level_ids = [], [], []
        offset = float(max(self.image_size) + 1)
        for level, (logits, delta, stride) in enumerate(zip(objectness, deltas, self.strides)):
            h, w = logits.shape[1], logits.shape[2]
            anchors = ops.convert_to_tensor(grid_anchors((h, w), stride, scales=self.scales, ratios=self.ratios))
            flat_scores = ops.sigmoid(ops.reshape(logits, (-1, h * w * logits.shape[3])))
            flat_deltas = ops.reshape(delta, (-1, h * w * logits.shape[3], 4))
            k = min(self.pre_nms_top_k, flat_scores.shape[1])
            top_scores, top_index = _top_k_rows(flat_scores, k)
            top_boxes = decode_boxes(ops.take(anchors, top_index, axis=0), _gather_rows(flat_deltas, top_index),
                                     image_size=self.image_size)
            boxes.append(top_boxes)
            scores.append(top_scores)
            level_ids.append(ops.full((k,), level * offset))
        boxes = ops.stop_gradient(ops.concatenate(boxes, axis=1))
        scores = ops.stop_gradient(ops.concatenate(scores, axis=1))
        # Sort all candidates once; NMS per level by moving each level to its own region.
        order_scores, order = _top_k_rows(scores, scores.shape[1])
        boxes = _gather_rows(boxes, order)
        shift = ops.take(ops.concatenate(level_ids, axis=0), order)
        shifted = boxes + ops.expand_dims(shift, -1)
        nonempty = ops.logical_and(boxes[..., 2] > boxes[..., 0], boxes[..., 3] > boxes[..., 1])
        keep = greedy_nms_keep(shifted, nonempty, self.iou_threshold)
        ranked = ops.where(keep, order_scores, order_scores - 2.0)  # dropped boxes after every kept one
        k = min(self.num_proposals, ranked.shape[1])
        _, best = _top_k_rows(ranked, k)
        return _gather_rows(boxes, best)

    def compute_output_shape(self, input_shapes):
        total = sum(min(self.pre_nms_top_k, s[1] * s[2] * s[3]) for s in input_shapes[:len(self.strides)])
        return (input_shapes[0][0], min(self.num_proposals, total), 4)

    def get_config(self):
        return {**super().get_config(), "image_size": list(self.image_size), "strides": list(self.strides),
                "scales": list(self.scales), "ratios": list(self.ratios), "pre_nms_top_k": self.pre_nms_top_k,
                "iou_threshold": self.iou_threshold, "num_proposals": self.num_proposals}


def roi_levels(rois, num_levels=4, finest_scale=56):
    """mmdet ``SingleRoIExtractor.map_roi_levels``: floor(log2(sqrt(wh) / 56 + 1e-6)), clamped."""
    scale = ops.sqrt(ops.maximum((rois[..., 2] - rois[..., 0]) * (rois[..., 3] - rois[..., 1]), 0.0))
    level = ops.floor(ops.log2(scale / finest_scale + 1e-6))
    return ops.cast(ops.clip(level, 0, num_levels - 1), "int32")


@keras.saving.register_keras_serializable(package="kbench")
class MultiLevelRoIAlign(keras.layers.Layer):
    """mmcv ``RoIAlign(output_size, sampling_ratio, aligned=True)`` over FPN levels.

    Inputs: rois (N, R, 4) in image pixels, then the feature maps finest first (N, H_l, W_l, C)
    with ``strides``. Each roi is pooled from its level (``roi_levels``); each of the
    ``output_size``^2 bins averages ``sampling_ratio``^2 bilinear samples. mmdet's config asks for
    an adaptive ``sampling_ratio=0`` (ceil(roi size / 7) samples, data-dependent); a fixed count
    keeps shapes static (2, torchvision's MultiScaleRoIAlign choice). Output (N, R, S, S, C).
    """

    def __init__(self, output_size=7, sampling_ratio=2, strides=(4, 8, 16, 32), finest_scale=56, **kwargs):
        super().__init__(**kwargs)
        self.output_size = int(output_size)
        self.sampling_ratio = int(sampling_ratio)
        self.strides = tuple(int(s) for s in strides)
        self.finest_scale = int(finest_scale)

    def call(self, inputs):
        rois, features = inputs[0], inputs[1:]
        batch_rois = rois.shape[1]
        channels = features[0].shape[-1]
        sizes = [(f.shape[1], f.shape[2]) for f in features]
        offsets = np.cumsum([0] + [h * w for h, w in sizes])[:-1]
        table = ops.concatenate([ops.reshape(f, (-1, h * w, channels)) for f, (h, w) in zip(features, sizes)], axis=1)
        table_rows = int(sum(h * w for h, w in sizes))

        level = roi_levels(rois, len(self.strides), self.finest_scale)            # (N, R)
        per_level = lambda values: ops.take(ops.convert_to_tensor(np.asarray(values, "float32")), level)
        scale = 1.0 / per_level(self.strides)
        height, width = per_level([h for h, _ in sizes]), per_level([w for _, w in sizes])
        offset = per_level(offsets)

        # Sample positions in the level's grid (aligned=True: pixel centres at -0.5).
        x1, y1 = rois[..., 0] * scale - 0.5, rois[..., 1] * scale - 0.5
        bin_w = (rois[..., 2] * scale - 0.5 - x1) / self.output_size
        bin_h = (rois[..., 3] * scale - 0.5 - y1) / self.output_size
        steps = self.output_size * self.sampling_ratio
        grid = (np.arange(steps, dtype="float32") + 0.5) / self.sampling_ratio     # in bins
        grid = ops.convert_to_tensor(grid)
        ys = ops.expand_dims(y1, -1) + ops.expand_dims(bin_h, -1) * grid           # (N, R, steps)
        xs = ops.expand_dims(x1, -1) + ops.expand_dims(bin_w, -1) * grid
        height, width, offset = (ops.expand_dims(t, -1) for t in (height, width, offset))

        def axis_weights(pos, size):
            inside = ops.logical_and(pos >= -1.0, pos <= size)
            pos = ops.clip(pos, 0.0, size - 1.0)
            low = ops.floor(pos)
            high = ops.minimum(low + 1.0, size - 1.0)
            frac = pos - low
            weight = ops.cast(inside, pos.dtype)
            return low, high, (1.0 - frac) * weight, frac * weight

        y_low, y_high, wy_low, wy_high = axis_weights(ys, height)
        x_low, x_high, wx_low, wx_high = axis_weights(xs, width)
        batch = ops.shape(rois)[0]
        image_offset = ops.reshape(ops.arange(batch, dtype="int32") * table_rows, (-1, 1, 1, 1))
        flat_table = ops.reshape(table, (-1, channels))
        pooled = 0.0
        for yy, wy in ((y_low, wy_low), (y_high, wy_high)):
            for xx, wx in ((x_low, wx_low), (x_high, wx_high)):
                index = offset[..., None] + yy[..., :, None] * width[..., None] + xx[..., None, :]   # (N, R, s, s)
                index = ops.cast(index, "int32") + image_offset
                values = ops.take(flat_table, ops.reshape(index, (-1,)), axis=0)
                values = ops.reshape(values, (-1, batch_rois, steps, steps, channels))
                pooled = pooled + values * (wy[..., :, None] * wx[..., None, :])[..., None]
        s, r = self.output_size, self.sampling_ratio
        pooled = ops.reshape(pooled, (-1, batch_rois, s, r, s, r, channels))
        return ops.mean(pooled, axis=(3, 5))

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], input_shapes[0][1], self.output_size, self.output_size, input_shapes[1][-1])

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size, "sampling_ratio": self.sampling_ratio,
                "strides": list(self.strides), "finest_scale": self.finest_scale}


@keras.saving.register_keras_serializable(package="kbench")
class DetectionOutput(keras.layers.Layer):
    """mmdet ``bbox_head.predict_by_feat`` + ``multiclass_nms`` with static shapes.

    Inputs: rois (N, R, 4), class logits (N, R, C + 1) (background last, as mmdet), class-specific
    deltas (N, R, 4C). Scores below ``score_threshold`` are dropped; of the remaining (roi, class)
    pairs the ``pre_nms_top_k`` best go through class-aware NMS at ``iou_threshold`` and the
    ``max_detections`` best are returned: boxes (N, D, 4) and class scores (N, D, C), the
    detection's score at its class and 0 elsewhere (0 everywhere on padding rows).
    """

    def __init__(self, image_size, num_classes, score_threshold=0.05, iou_threshold=0.5, max_detections=100,
                 pre_nms_top_k=1000, stds=(0.1, 0.1, 0.2, 0.2), **kwargs):
        super().__init__(**kwargs)
        self.image_size = tuple(int(s) for s in image_size)
        self.num_classes = int(num_classes)
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.max_detections = int(max_detections)
        self.pre_nms_top_k = int(pre_nms_top_k)
        self.stds = tuple(float(s) for s in stds)

    def call(self, inputs):
        rois, logits, deltas = inputs
        num_rois, classes = rois.shape[1], self.num_classes
        scores = ops.softmax(logits, axis=-1)[..., :classes]                               # (N, R, C)
        boxes = decode_boxes(ops.expand_dims(rois, 2), ops.reshape(deltas, (-1, num_rois, classes, 4)),
                             stds=self.stds, image_size=self.image_size)                     # (N, R, C, 4)
        flat_scores = ops.reshape(scores, (-1, num_rois * classes))
        flat_boxes = ops.reshape(boxes, (-1, num_rois * classes, 4))
        k = min(self.pre_nms_top_k, num_rois * classes)
        top_scores, top_index = _top_k_rows(flat_scores, k)
        top_boxes = _gather_rows(flat_boxes, top_index)
        top_class = top_index % classes
        offset = float(max(self.image_size) + 1)
        shifted = top_boxes + ops.expand_dims(ops.cast(top_class, top_boxes.dtype) * offset, -1)
        valid = top_scores > self.score_threshold
        keep = greedy_nms_keep(ops.stop_gradient(shifted), valid, self.iou_threshold)
        ranked = ops.where(keep, top_scores, top_scores - 2.0)
        d = min(self.max_detections, k)
        _, best = _top_k_rows(ops.stop_gradient(ranked), d)
        kept = ops.cast(_gather_rows(keep, best), top_scores.dtype)
        det_boxes = _gather_rows(top_boxes, best) * ops.expand_dims(kept, -1)
        det_scores = _gather_rows(top_scores, best) * kept
        det_class = _gather_rows(top_class, best)
        one_hot = ops.one_hot(det_class, classes, dtype=det_scores.dtype)
        return one_hot * ops.expand_dims(det_scores, -1), det_boxes

    def compute_output_shape(self, input_shapes):
        n, r = input_shapes[0][0], input_shapes[0][1]
        d = min(self.max_detections, self.pre_nms_top_k, r * self.num_classes)
        return (n, d, self.num_classes), (n, d, 4)

    def get_config(self):
        return {**super().get_config(), "image_size": list(self.image_size), "num_classes": self.num_classes,
                "score_threshold": self.score_threshold, "iou_threshold": self.iou_threshold,
                "max_detections": self.max_detections, "pre_nms_top_k": self.pre_nms_top_k, "stds": list(self.stds)}


# --- Training targets and losses (mmdet's train_cfg of faster-rcnn_r50_fpn.py) ------------------
# The sweep's train mode has no annotations: the detector trains on a fixed synthetic ground truth
# (``synthetic_ground_truth``), so anchor targets are constants computed once with numpy and the
# RoI targets (which depend on the predicted proposals) are computed in the graph.

def synthetic_ground_truth(image_size, num_boxes=4, num_classes=80):
    """A deterministic set of boxes (x1, y1, x2, y2) of varied sizes and aspect ratios, and labels."""
    h, w = image_size
    fractions = np.array([[0.05, 0.10, 0.45, 0.60], [0.50, 0.20, 0.95, 0.50],
                          [0.30, 0.55, 0.55, 0.95], [0.60, 0.60, 0.75, 0.90]], dtype="float32")
    boxes = fractions[:num_boxes] * np.array([w, h, w, h], dtype="float32")
    labels = (np.arange(num_boxes) * 7) % num_classes
    return boxes, labels.astype("int32")


def _iou_numpy(a, b):
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-6)


def rpn_targets(anchors, gt_boxes, *, pos_iou=0.7, neg_iou=0.3, min_pos_iou=0.3, num_samples=256,
                pos_fraction=0.5, seed=0):
    """mmdet ``MaxIoUAssigner`` + ``RandomSampler`` for the RPN, on constant anchors and boxes.

    Returns (objectness target (A,), sample weight (A,), delta targets (A, 4), positive (A,)):
    256 anchors sampled, at most half positive, with a fixed seed.
    """
    iou = _iou_numpy(anchors, gt_boxes)
    best_gt = iou.argmax(axis=1)
    best_iou = iou.max(axis=1)
    positive = best_iou >= pos_iou
    negative = best_iou < neg_iou
    # Every box gets the anchors that overlap it most (if above min_pos_iou).
    for g in range(gt_boxes.shape[0]):
        column = iou[:, g]
        if column.max() >= min_pos_iou:
            best = column == column.max()
            positive |= best
            best_gt[best] = g
    negative &= ~positive
    rng = np.random.default_rng(seed)
    pos_index = np.flatnonzero(positive)
    pos_index = rng.permutation(pos_index)[:int(num_samples * pos_fraction)]
    neg_index = rng.permutation(np.flatnonzero(negative))[:num_samples - len(pos_index)]
    weight = np.zeros(len(anchors), "float32")
    weight[pos_index] = weight[neg_index] = 1.0
    sampled_positive = np.zeros(len(anchors), bool)
    sampled_positive[pos_index] = True
    deltas = _encode_numpy(anchors, gt_boxes[best_gt])
    return sampled_positive.astype("float32"), weight, deltas.astype("float32"), sampled_positive


def _encode_numpy(anchors, targets):
    """``encode_boxes`` (stds 1) on constants, with numpy (no tensor during a trace)."""
    def centre(b):
        w, h = np.maximum(b[:, 2] - b[:, 0], 1e-6), np.maximum(b[:, 3] - b[:, 1], 1e-6)
        return b[:, 0] + 0.5 * w, b[:, 1] + 0.5 * h, w, h

    acx, acy, aw, ah = centre(anchors)
    tcx, tcy, tw, th = centre(targets)
    return np.stack([(tcx - acx) / aw, (tcy - acy) / ah, np.log(tw / aw), np.log(th / ah)], axis=-1)


def _hashed_uniform(n, salt):
    """Deterministic pseudo-random numbers in [0, 1) for a fixed-shape sampler (no RNG state)."""
    index = np.arange(n, dtype=np.uint64)
    return ((index * np.uint64(2654435761) + np.uint64(salt)) % np.uint64(1000003)).astype("float32") / 1000003.0


def rpn_loss(objectness_logits, deltas, targets):
    """Binary cross-entropy over the sampled anchors + L1 on the positive ones' deltas, both / 256."""
    labels, weight, target_deltas = (ops.convert_to_tensor(t) for t in targets[:3])
    positive = ops.convert_to_tensor(np.asarray(targets[3], "float32"))
    count = ops.maximum(ops.sum(weight), 1.0)
    bce = ops.softplus(objectness_logits) - objectness_logits * labels[None]   # BCE with logits
    cls = ops.sum(bce * weight[None], axis=1) / count
    l1 = ops.sum(ops.abs(deltas - target_deltas[None]), axis=-1)
    reg = ops.sum(l1 * positive[None], axis=1) / count
    return ops.mean(cls + reg)


def roi_loss(proposals, cls_logits, box_deltas, gt_boxes, gt_labels, *, num_classes, num_samples=512,
             pos_fraction=0.25, pos_iou=0.5, stds=(0.1, 0.1, 0.2, 0.2)):
    """mmdet's RCNN stage loss: assign proposals (IoU >= 0.5 positive), sample 512 (<= 25% positive)
    with a fixed-shape sampler, cross-entropy over the sample + L1 on the positives' class deltas."""
    num_rois = proposals.shape[1]
    gt = ops.convert_to_tensor(gt_boxes)
    iou = box_iou(proposals, gt[None])                                       # (N, R, G)
    best_iou = ops.max(iou, axis=-1)
    best_gt = ops.argmax(iou, axis=-1)
    positive = best_iou >= pos_iou
    noise = ops.convert_to_tensor(_hashed_uniform(num_rois, 17))[None]
    max_pos = min(int(num_samples * pos_fraction), num_rois)
    pos_rank, pos_index = _top_k_rows(ops.where(positive, noise, -1.0), max_pos)
    num_pos = ops.sum(ops.cast(pos_rank >= 0, "int32"), axis=1, keepdims=True)
    neg_count = min(num_samples, num_rois)
    neg_rank, neg_index = _top_k_rows(ops.where(positive, -1.0, noise), neg_count)
    neg_taken = ops.logical_and(neg_rank >= 0, ops.arange(neg_count)[None] < num_samples - num_pos)
    pos_taken = pos_rank >= 0

    labels = ops.take(ops.convert_to_tensor(gt_labels), best_gt)             # (N, R)
    background = num_classes
    log_probs = ops.log_softmax(cls_logits, axis=-1)
    pos_labels = _gather_rows(labels, pos_index)
    pos_log_probs = _gather_rows(log_probs, pos_index)
    neg_log_probs = _gather_rows(log_probs, neg_index)
    pos_ce = -ops.sum(pos_log_probs * ops.one_hot(pos_labels, num_classes + 1), axis=-1)
    neg_ce = -neg_log_probs[..., background]
    count = ops.cast(ops.sum(ops.cast(pos_taken, "int32"), axis=1) + ops.sum(ops.cast(neg_taken, "int32"), axis=1),
                     cls_logits.dtype)
    count = ops.maximum(count, 1.0)
    cls = (ops.sum(ops.where(pos_taken, pos_ce, 0.0), axis=1) + ops.sum(ops.where(neg_taken, neg_ce, 0.0), axis=1))

    deltas = ops.reshape(box_deltas, (-1, num_rois, num_classes, 4))
    pos_deltas = _gather_rows(deltas, pos_index)                              # (N, P, C, 4)
    pos_deltas = ops.sum(pos_deltas * ops.one_hot(pos_labels, num_classes)[..., None], axis=2)
    targets = encode_boxes(_gather_rows(proposals, pos_index), ops.take(gt, _gather_rows(best_gt, pos_index), axis=0),
                           stds=stds)
    reg = ops.sum(ops.where(pos_taken[..., None], ops.abs(pos_deltas - ops.stop_gradient(targets)), 0.0), axis=(1, 2))
    return ops.mean((cls + reg) / count)
