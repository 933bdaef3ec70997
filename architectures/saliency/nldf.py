"""NLDF: VGG-16 with local contrast, transposed-conv decoder and a global branch."""

from __future__ import annotations

from keras import layers, models

from architectures._registry import Paper, register_model
from architectures.layers import image_input
from architectures.saliency._shared import COMMON_NOTE, check_input_multiple, conv, reference_reported, vgg16

INPUT_MULTIPLE = 32  # decoder re-aligns features of stride 32: input sides must be multiples of it

NLDF_PAPER = Paper("Non-Local Deep Features for Salient Object Detection", 2017,
                   "https://openaccess.thecvf.com/content_cvpr_2017/html/Luo_Non-Local_Deep_Features_CVPR_2017_paper.html")


def _local_contrast(x, name):
    """x - mean of its 3x3 neighbourhood (the notes: 3x3 average + subtract)."""
    mean = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_avg")(x)
    return layers.Subtract(name=name)([x, mean])


def nldf(input_shape=(352, 352, 3), num_classes=2, name=None):
    """NLDF (seed lines 620-743): VGG-16, 3x3 convs (128) on pool1..pool5 with local contrast,
    5x5/2 "unpooling" transposed convs up to h/2, local 1x1 convs, and the global branch (valid
    5x5, 5x5, 3x3 convs on pool5, 11x11 at the paper's 352/354 input -> 1x1, then a score layer).

    The global branch needs pool5 >= 11x11, i.e. inputs of at least 352. At larger inputs it is
    global-average pooled to 1x1 before its score layer and broadcast-added to the local score.
    The output is the h/2 x w/2 score map (as in NLDF).
    """
    check_input_multiple(input_shape, INPUT_MULTIPLE, "nldf")
    inputs = image_input(input_shape)
    _, pooled = vgg16(inputs)
    widths = (128, 128, 128, 128, 128)
    feats = [conv(p, wd, 3, f"conv{6 + i}") for i, (p, wd) in enumerate(zip(pooled, widths))]
    contrasts = [_local_contrast(f, f"contrast{i + 1}") for i, f in enumerate(feats)]
    # Decoder: unpooling5 ... unpooling2 (5x5 stride-2 transposed convs).
    x = layers.Concatenate(name="unpooling5_in")([feats[4], contrasts[4]])
    x = layers.Conv2DTranspose(128, 5, strides=2, padding="same", activation="relu", name="unpooling5")(x)
    for level, out_ch in ((4, 256), (3, 384), (2, 512)):
        x = layers.Concatenate(name=f"unpooling{level}_in")([feats[level - 1], contrasts[level - 1], x])
        x = layers.Conv2DTranspose(out_ch, 5, strides=2, padding="same", activation="relu",
                                   name=f"unpooling{level}")(x)
    x = layers.Concatenate(name="local_in")([feats[0], contrasts[0], x])
    x = conv(x, 640, 1, "local")
    local_score = layers.Conv2D(num_classes, 1, name="local_score")(x)
    # Global branch on pool5.
    g = conv(pooled[4], 128, 5, "global_conv1", padding="valid")
    g = conv(g, 128, 5, "global_conv2", padding="valid")
    g = conv(g, 128, 3, "global_conv3", padding="valid")
    g = layers.GlobalAveragePooling2D(keepdims=True, name="global_pool")(g)
    global_score = layers.Dense(num_classes, name="global_score")(g)
    outputs = layers.Add(name="add_score")([local_score, global_score])
    return models.Model(inputs, outputs, name=name or "nldf")


register_model(
    "nldf", builder=nldf, family="saliency", input_multiple=INPUT_MULTIPLE,
    paper=NLDF_PAPER, default_input_shape=(352, 352, 3),
    default_num_classes=2, min_input_size=(352, 352), test_input_size=(352, 352),
    reported=reference_reported("NLDF", lines="620-743 (MACs at 352x352)", size=352),
    notes=(COMMON_NOTE, "Input sides must be multiples of 32 and at least 352 (global branch: "
           "valid 5x5, 5x5, 3x3 convs on the h/32 map need 11x11).",
           "The global branch cost follows the notes' symbolic form (h/32-4)(w/32-4)... so a fit "
           "gives the audit's symbolic alternative 2863684.75*h*w - 353280*(h+w) + 67174656; at 352 "
           "it equals the numeric constant 84115712.",
           "Above 352 the global branch output is global-average pooled to 1x1 before its 128 -> 2 "
           "score layer (1x1 at 352, as in the notes).",
           "'128^2' read as 128*2 (audit). 5x5/2 'unpooling' layers are transposed convs: notes charge "
           "the full kernel at output resolution, kbench/TF 1/4 of it (true total 1063940.75*h*w + 84115712).",
           "Output is the h/2 x w/2 score map."),
)
