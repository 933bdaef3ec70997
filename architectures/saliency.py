"""Saliency-detection networks of the FLOPs notes (seed 000, audited in ``saliency_audit.md``).

PAGRN (two versions), UCF (with and without BN), MDF, RFCN, DS, DCL, NLDF, DSS and
MobileNetV2 + DeepLabv3, built layer for layer from the notes' lists. Where the notes are
ambiguous or inconsistent the audit's stated reading is taken; every such choice is recorded in
the model's ``notes`` metadata. The VGG-16 backbones are ``architectures.vgg.vgg_features``.

Conventions shared by all builders:

* ``num_classes`` is the number of output maps (channels of the final saliency/score map).
* Convolutions are "same"-padded with bias and ReLU (as in the VGG backbone) unless the notes
  say otherwise; score/prediction convs have no activation.
* Decoders re-align features of several resolutions, so most networks need input sides that
  are multiples of their total stride; the builders raise ``ValueError`` (``kbench.build``:
  ``InputSizeError``) with the rule otherwise. Non-square inputs are fine.
* The notes' cost conventions (pooling, element-wise ops, bilinear upsampling, BN, transposed
  conv charged with the full kernel at output resolution) are reproduced by
  ``kbench.fit.seed_convention_ops``; ``kbench.profile`` counts MACs of convs/dense only.
"""

from __future__ import annotations

import keras
from keras import layers, models

from architectures._registry import Paper, Reported, register_model
from architectures.layers import conv_bn_act, depthwise_bn_act, image_input
from architectures.layers.saliency import ChannelSlice, ZeroState
from architectures.vgg import vgg_features

SEED = "shared/seeds/000 (saliency FLOPs notes), audited in shared/specs/saliency_audit.md"


def _check_divisible(input_shape, stride: int, name: str):
    h, w = int(input_shape[0]), int(input_shape[1])
    if h % stride or w % stride:
        raise ValueError(
            f"{name} needs input height and width that are multiples of {stride} "
            f"(its decoder re-aligns stride-{stride} features); got {h}x{w}")


def _conv(x, filters, kernel, name, *, activation="relu", dilation=1, padding="same", norm=False, strides=1):
    """Conv (+bias) [+BN] + activation with systematic names (``<name>_conv``...)."""
    return conv_bn_act(x, filters, kernel, strides=strides, padding=padding, dilation=dilation, use_bias=True,
                       norm=norm, activation=activation, name=name)


def _vgg16(inputs, *, batch_norm=False, name="block"):
    """VGG-16 (config D) features: pre-pool block outputs and the pooled output of each block."""
    pre_pool, pooled5 = vgg_features(inputs, "D", batch_norm=batch_norm, name=name)
    probe = models.Model(inputs, pooled5)  # only to look up the intermediate pool outputs
    pooled = [probe.get_layer(f"{name}{b}_pool").output for b in range(1, 6)]
    return pre_pool, pooled


# ---------------------------------------------------------------------------------------------
# PAGRN
# ---------------------------------------------------------------------------------------------
PAGRN_PAPER = Paper("Progressive Attention Guided Recurrent Network for Salient Object Detection", 2018,
                    "https://openaccess.thecvf.com/content_cvpr_2018/html/Zhang_Progressive_Attention_Guided_CVPR_2018_paper.html")


def _pagrn_attention(x, channels, name, *, transition=None):
    """Channel attention (GAP -> FC C->C on the pooled vector -> reweight), spatial attention
    (1x1 conv C->C -> reweight) and, for the deeper stages, a x2 upsample + 1x1 transition conv.

    The notes' cost line is GAP + 1x1xCxC + reweight + HxWxCxC + reweight (+ up + conv).
    """
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_gap")(x)
    ch = layers.Dense(channels, activation="sigmoid", use_bias=True, name=f"{name}_channel_fc")(pooled)
    x = layers.Multiply(name=f"{name}_channel_reweight")([x, ch])
    sp = layers.Conv2D(channels, 1, activation="sigmoid", name=f"{name}_spatial_conv")(x)
    x = layers.Multiply(name=f"{name}_spatial_reweight")([x, sp])
    if transition is not None:
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up")(x)
        x = _conv(x, transition, 1, f"{name}_transition")
    return x


def _pagrn_head(block5, num_classes):
    x = _pagrn_attention(block5, 512, "attention5", transition=256)   # h/16 -> h/8, 512 -> 256
    x = _pagrn_attention(x, 256, "attention4", transition=256)        # h/8 -> h/4
    x = _pagrn_attention(x, 256, "attention3")                        # h/4
    return layers.Conv2D(num_classes, 1, name="saliency_map")(x)


def _pagrn_v1_step(image, state, num_classes):
    """One recurrent step of PAGRN v1: the backbone with batch_norm_pooling and the feedback
    of the previous step's h/16 x 512 top feature (1x1 convs, upsampled, added)."""
    _, x = vgg_features(image, ((3, 3),), name="block")                 # Block1 + 2x2 pool -> h/2
    stages = ((2, 128, 2, 4), (3, 256, 4, 2), (4, 512, 4, 1))           # block, width, convs, up factor
    for block, width, n_convs, up in stages:
        for c in range(1, n_convs + 1):
            x = _conv(x, width, 3, f"block{block}_conv{c}")
        x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"batch_norm_pooling_{block}_bn")(x)
        x = layers.MaxPooling2D(2, name=f"batch_norm_pooling_{block}_pool")(x)
        feedback = layers.Conv2D(width, 1, name=f"recurrent_{block}")(state)
        if up > 1:
            feedback = layers.UpSampling2D(up, interpolation="nearest", name=f"recurrent_{block}_up")(feedback)
        x = layers.Add(name=f"add_recurrent_{block}")([x, feedback])
    for c in range(1, 6):
        x = _conv(x, 512, 3, f"block5_conv{c}")
    return x


def pagrn(input_shape=(224, 224, 3), num_classes=1, recurrent_steps=1, name=None):
    """PAGRN, first version of the notes (seed lines 3-92): recurrent feedback + BN-pooling.

    ``recurrent_steps`` T: the notes count one step. Step 1's feedback state is zeros (an RNN's
    initial state), so T=1 has exactly the counted layers; T>1 unrolls with shared weights and
    feeds each step the previous step's Block5 output (MACs grow ~T times).
    """
    _check_divisible(input_shape, 16, "pagrn")
    if int(recurrent_steps) < 1:
        raise ValueError(f"recurrent_steps must be >= 1, got {recurrent_steps!r}")
    inputs = image_input(input_shape)
    state = ZeroState(512, 16, name="recurrent_state0")(inputs)
    if recurrent_steps == 1:
        top = _pagrn_v1_step(inputs, state, num_classes)
    else:
        step_in = keras.Input(shape=tuple(input_shape), name="step_image")
        step_state = keras.Input(shape=(input_shape[0] // 16, input_shape[1] // 16, 512), name="step_state")
        step = models.Model([step_in, step_state], _pagrn_v1_step(step_in, step_state, num_classes),
                            name="pagrn_step")
        top = state
        for _ in range(int(recurrent_steps)):
            top = step([inputs, top])
    outputs = _pagrn_head(top, num_classes)
    return models.Model(inputs, outputs, name=name or "pagrn")


def pagrn_v2(input_shape=(224, 224, 3), num_classes=1, name=None):
    """PAGRN, later plain version of the notes (seed lines 566-618): VGG blocks 1-4 with 2/2/4/4
    convs and 2x2 pools (VGG-19's first four blocks), a 5-conv Block5 without pool, attention."""
    _check_divisible(input_shape, 16, "pagrn_v2")
    inputs = image_input(input_shape)
    _, x = vgg_features(inputs, ((3, 3), (3, 3), (3, 3, 3, 3), (3, 3, 3, 3)), name="block")
    for c in range(1, 6):
        x = _conv(x, 512, 3, f"block5_conv{c}")
    outputs = _pagrn_head(x, num_classes)
    return models.Model(inputs, outputs, name=name or "pagrn_v2")


# ---------------------------------------------------------------------------------------------
# UCF
# ---------------------------------------------------------------------------------------------
UCF_PAPER = Paper("Learning Uncertain Convolutional Features for Accurate Saliency Detection", 2017,
                  "https://arxiv.org/abs/1708.02031")

# Decoder stages of the notes: (name, conv widths); each starts with a bilinear x2 upsampling.
UCF_DECODER = (("deconv5", (512, 512, 512)), ("deconv4", (512, 512, 256)), ("deconv3", (256, 256, 128)),
               ("deconv2", (128, 64)), ("deconv1", (64, None)))


def ucf(input_shape=(224, 224, 3), num_classes=2, batch_norm=False, name=None):
    """UCF (seed lines 94-198 with BN, 492-564 without): VGG-16 encoder, decoder of bilinear x2
    upsampling + 3x3 convs back to full resolution, ``num_classes`` output maps (2 in the notes).

    With ``batch_norm`` every conv (encoder and decoder, the last one included) is followed by
    BN over the conv's own output channels (the audit's channel-consistent reading).
    """
    _check_divisible(input_shape, 32, "ucf")
    inputs = image_input(input_shape)
    _, x = vgg_features(inputs, "D", batch_norm=batch_norm, name="block")
    for stage, widths in UCF_DECODER:
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{stage}_up")(x)
        for c, width in enumerate(widths, start=1):
            last = width is None
            x = _conv(x, num_classes if last else width, 3, f"{stage}_conv{c}", norm=batch_norm,
                      activation=None if last else "relu")
    return models.Model(inputs, x, name=name or ("ucf_bn" if batch_norm else "ucf"))


# ---------------------------------------------------------------------------------------------
# MDF
# ---------------------------------------------------------------------------------------------
MDF_PAPER = Paper("Visual Saliency Based on Multiscale Deep Features", 2015, "https://arxiv.org/abs/1503.08663")


def mdf_extractor(input_shape=(224, 224, 3), name="mdf_extractor"):
    """MDF's per-region feature extractor: AlexNet-style, ungrouped convs, fc6 + fc7 (4096-d).

    Layers as in the notes: 11x11/4 conv + 3x3/2 pool, 5x5 conv + pool, three 3x3 convs + pool,
    fc6 on the flattened h/32 x w/32 x 256 map (so its weights grow with h*w), fc7.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="region")
    x = _conv(inputs, 96, 11, "conv1", strides=4)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = _conv(x, 256, 5, "conv2")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    x = _conv(x, 384, 3, "conv3")
    x = _conv(x, 384, 3, "conv4")
    x = _conv(x, 256, 3, "conv5")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool5")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(4096, activation="relu", name="fc6")(x)
    x = layers.Dense(4096, activation="relu", name="fc7")(x)
    return models.Model(inputs, x, name=name)


def mdf(input_shape=(224, 224, 9), num_classes=2, name=None):
    """MDF, one region evaluation: the shared extractor on the region, its neighbourhood and the
    whole image (stacked as 3 x 3 channels), concatenated 3 x 4096 -> 300 -> 300 -> ``num_classes``.

    The whole method runs the extractor (2n+1) times and the MLP n times per segmentation, for k
    segmentations, plus a k*h*w fusion: see ``mdf_total_macs``.
    """
    _check_divisible(input_shape, 32, "mdf")
    if input_shape[2] % 3:
        raise ValueError(f"mdf takes three stacked 3-channel patches (9 channels); got {input_shape[2]} channels")
    h, w, c = input_shape
    inputs = image_input(input_shape)
    extractor = mdf_extractor((h, w, c // 3))
    features = []
    for i, part in enumerate(("region", "context", "image")):
        patch = ChannelSlice(i * (c // 3), (i + 1) * (c // 3), name=f"{part}_patch")(inputs)
        features.append(extractor(patch))
    x = layers.Concatenate(name="features")(features)
    x = layers.Dense(300, activation="relu", name="nn_layer1")(x)
    x = layers.Dense(300, activation="relu", name="nn_layer2")(x)
    outputs = layers.Dense(num_classes, name="nn_output")(x)
    return models.Model(inputs, outputs, name=name or "mdf")


def mdf_total_macs(extractor_macs, mlp_macs, h, w, n, k):
    """Total cost of MDF on one image (the notes' line 246, as corrected by the audit).

    ``extractor_macs``: one extractor pass at the region size h x w; ``mlp_macs``: one pass of the
    3x4096 -> 300 -> 300 -> 2 network; n superpixels per level, k segmentations. The first and
    second level regions need n extractor passes each and the whole image one, the MLP runs n
    times, and the k saliency maps are fused with one op per pixel each:
    ``k * ((2n + 1) * extractor + n * mlp + h * w)``.
    """
    return k * ((2 * n + 1) * extractor_macs + n * mlp_macs + h * w)


# ---------------------------------------------------------------------------------------------
# RFCN and DS (FCN-style VGG-16 with transposed convolutions)
# ---------------------------------------------------------------------------------------------
RFCN_PAPER = Paper("Saliency Detection with Recurrent Fully Convolutional Networks", 2016,
                   "https://doi.org/10.1007/978-3-319-46493-0_50")
DS_PAPER = Paper("DeepSaliency: Multi-Task Deep Neural Network Model for Salient Object Detection", 2016,
                 "https://arxiv.org/abs/1510.05484")


def rfcn(input_shape=(224, 224, 4), num_classes=2, score_channels=60, fc6_kernel=7, passes=1, name=None):
    """RFCN (seed lines 254-318): FCN-8s on RGB + saliency prior (4 channels).

    fc6 7x7 (the cost line; the audit's consistent reading), fc7 1x1, 60-channel score maps
    (PASCAL-Context), two 4x4/2 transposed convs with the pool4/pool3 skips, 16x16/8 bigscore.
    ``passes=T`` unrolls the recurrent refinement: the same network (shared weights) runs T
    times, each pass fed the RGB channels plus the previous pass's foreground probability as
    the prior channel, so MACs are T x one pass (the seed counts one pass, ``passes=1``).
    """
    _check_divisible(input_shape, 32, "rfcn")
    if not isinstance(passes, int) or passes < 1:
        raise ValueError(f"rfcn passes must be a positive integer, got {passes!r}")
    if passes > 1:
        return _unrolled_rfcn(input_shape, num_classes, score_channels, fc6_kernel, passes, name)
    inputs = image_input(input_shape)
    _, pooled = _vgg16(inputs)
    x = _conv(pooled[4], 4096, fc6_kernel, "fc6")
    x = _conv(x, 4096, 1, "fc7")
    x = layers.Conv2D(score_channels, 1, name="score")(x)
    x = layers.Conv2DTranspose(score_channels, 4, strides=2, padding="same", name="upscore2")(x)
    skip = layers.Conv2D(score_channels, 1, name="score_pool4")(pooled[3])
    x = layers.Add(name="fuse")([x, skip])
    x = layers.Conv2DTranspose(score_channels, 4, strides=2, padding="same", name="upsample_fused16")(x)
    skip = layers.Conv2D(score_channels, 1, name="score_pool3")(pooled[2])
    x = layers.Add(name="score_final")([x, skip])
    outputs = layers.Conv2DTranspose(num_classes, 16, strides=8, padding="same", name="bigscore")(x)
    return models.Model(inputs, outputs, name=name or "rfcn")


def _unrolled_rfcn(input_shape, num_classes, score_channels, fc6_kernel, passes, name):
    one_pass = rfcn(input_shape, num_classes, score_channels, fc6_kernel, passes=1, name="rfcn_pass")
    inputs = image_input(input_shape)
    channels = input_shape[-1]
    rgb = ChannelSlice(0, channels - 1, name="rgb")(inputs)
    x = one_pass(inputs)
    for t in range(2, passes + 1):
        probabilities = layers.Softmax(name=f"pass{t}_softmax")(x)
        prior = ChannelSlice(num_classes - 1, num_classes, name=f"pass{t}_prior")(probabilities)
        x = one_pass(layers.Concatenate(name=f"pass{t}_input")([rgb, prior]))
    return models.Model(inputs, x, name=name or f"rfcn_x{passes}")


def ds(input_shape=(224, 224, 3), num_classes=1, conv6_kernel=7, name=None):
    """DS (DeepSaliency, seed lines 320-366): VGG-16 FCN, conv6 7x7, conv7 1x1, 1-channel score,
    one 63x63/32 transposed conv back to full resolution."""
    _check_divisible(input_shape, 32, "ds")
    inputs = image_input(input_shape)
    _, x = vgg_features(inputs, "D", name="block")
    x = _conv(x, 4096, conv6_kernel, "conv6")
    x = _conv(x, 4096, 1, "conv7")
    x = layers.Conv2D(num_classes, 1, name="score")(x)
    outputs = layers.Conv2DTranspose(num_classes, 63, strides=32, padding="same", use_bias=False,
                                     name="deconv")(x)
    return models.Model(inputs, outputs, name=name or "ds")


# ---------------------------------------------------------------------------------------------
# DCL
# ---------------------------------------------------------------------------------------------
DCL_PAPER = Paper("Deep Contrast Learning for Salient Object Detection", 2016, "https://arxiv.org/abs/1603.01976")


def _dcl_side(x, name, num_classes):
    """A multiscale side branch: 3x3 conv -> 128, 1x1 128 -> 128, 1x1 128 -> saliency."""
    x = _conv(x, 128, 3, f"{name}_conv")
    x = _conv(x, 128, 1, f"{name}_fc")
    return layers.Conv2D(num_classes, 1, name=f"{name}_ms_saliency")(x)


def dcl(input_shape=(224, 224, 3), num_classes=1, name=None):
    """DCL, pixel-level multiscale FCN stream (seed lines 368-420), DeepLab-style VGG-16 at
    output stride 8: 3x3/2 pools 1-3, 3x3/1 pools 4-5, conv5 3x3 dilated 2, fc6 4x4 dilated 4
    (the parameter line's kernels), fc7 1x1, fc8 -> saliency; six side maps upsampled
    (bilinear) to full resolution and fused by a 1x1 conv (6 weights)."""
    _check_divisible(input_shape, 8, "dcl")
    inputs = image_input(input_shape)
    sides = [_dcl_side(inputs, "data", num_classes)]
    x = _conv(inputs, 64, 3, "conv1_1")
    x = _conv(x, 64, 3, "conv1_2")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    sides.append(_dcl_side(x, "pool1", num_classes))
    x = _conv(x, 128, 3, "conv2_1")
    x = _conv(x, 128, 3, "conv2_2")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    sides.append(_dcl_side(x, "pool2", num_classes))
    for c in range(1, 4):
        x = _conv(x, 256, 3, f"conv3_{c}")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool3")(x)
    sides.append(_dcl_side(x, "pool3", num_classes))
    for c in range(1, 4):
        x = _conv(x, 512, 3, f"conv4_{c}")
    x = layers.MaxPooling2D(3, strides=1, padding="same", name="pool4")(x)
    sides.append(_dcl_side(x, "pool4", num_classes))
    for c in range(1, 4):
        x = _conv(x, 512, 3, f"conv5_{c}", dilation=2)
    x = layers.MaxPooling2D(3, strides=1, padding="same", name="pool5")(x)
    x = _conv(x, 4096, 4, "fc6", dilation=4)
    x = _conv(x, 4096, 1, "fc7")
    sides.append(layers.Conv2D(num_classes, 1, name="fc8")(x))
    factors = (1, 2, 4, 8, 8, 8)
    maps = [m if f == 1 else layers.UpSampling2D(f, interpolation="bilinear", name=f"side{i}_up")(m)
            for i, (m, f) in enumerate(zip(sides, factors))]
    x = layers.Concatenate(name="multiscale_maps")(maps)
    outputs = layers.Conv2D(num_classes, 1, use_bias=False, name="fuse")(x)
    return models.Model(inputs, outputs, name=name or "dcl")


# ---------------------------------------------------------------------------------------------
# NLDF
# ---------------------------------------------------------------------------------------------
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
    _check_divisible(input_shape, 32, "nldf")
    inputs = image_input(input_shape)
    _, pooled = _vgg16(inputs)
    widths = (128, 128, 128, 128, 128)
    feats = [_conv(p, wd, 3, f"conv{6 + i}") for i, (p, wd) in enumerate(zip(pooled, widths))]
    contrasts = [_local_contrast(f, f"contrast{i + 1}") for i, f in enumerate(feats)]
    # Decoder: unpooling5 ... unpooling2 (5x5 stride-2 transposed convs).
    x = layers.Concatenate(name="unpooling5_in")([feats[4], contrasts[4]])
    x = layers.Conv2DTranspose(128, 5, strides=2, padding="same", activation="relu", name="unpooling5")(x)
    for level, out_ch in ((4, 256), (3, 384), (2, 512)):
        x = layers.Concatenate(name=f"unpooling{level}_in")([feats[level - 1], contrasts[level - 1], x])
        x = layers.Conv2DTranspose(out_ch, 5, strides=2, padding="same", activation="relu",
                                   name=f"unpooling{level}")(x)
    x = layers.Concatenate(name="local_in")([feats[0], contrasts[0], x])
    x = _conv(x, 640, 1, "local")
    local_score = layers.Conv2D(num_classes, 1, name="local_score")(x)
    # Global branch on pool5.
    g = _conv(pooled[4], 128, 5, "global_conv1", padding="valid")
    g = _conv(g, 128, 5, "global_conv2", padding="valid")
    g = _conv(g, 128, 3, "global_conv3", padding="valid")
    g = layers.GlobalAveragePooling2D(keepdims=True, name="global_pool")(g)
    global_score = layers.Dense(num_classes, name="global_score")(g)
    outputs = layers.Add(name="add_score")([local_score, global_score])
    return models.Model(inputs, outputs, name=name or "nldf")


# ---------------------------------------------------------------------------------------------
# DSS
# ---------------------------------------------------------------------------------------------
DSS_PAPER = Paper("Deeply Supervised Salient Object Detection with Short Connections", 2017,
                  "https://arxiv.org/abs/1611.04849")

# Side branches: (source, stride, kernel, width of the two convs).
DSS_SIDES = ((1, 3, 128), (2, 3, 128), (3, 5, 256), (4, 5, 256), (5, 5, 512), (6, 7, 512))


def dss(input_shape=(224, 224, 3), num_classes=1, fusion=True, name=None):
    """DSS (seed lines 745-841): VGG-16 with six side outputs (conv1_2 ... conv5_3 and pool5),
    each two convs + a 1x1 score conv, and short connections: side 4 <- (4, 5, 6), side 3 <-
    (3, 5, 6), sides 2 and 1 <- (own, 3~, 4~, 5, 6), each fused by a 1x1 conv. Deeper maps are
    upsampled (bilinear) to the target resolution; ``fusion`` adds the final 1x1 conv over the six
    refined maps at full resolution (DSS has it; the notes do not count it)."""
    _check_divisible(input_shape, 32, "dss")
    inputs = image_input(input_shape)
    pre_pool, pooled = _vgg16(inputs)
    sources = [*pre_pool, pooled[4]]
    strides = (1, 2, 4, 8, 16, 32)
    side = {}
    for (i, kernel, width), src in zip(DSS_SIDES, sources):
        x = _conv(src, width, kernel, f"side{i}_conv1")
        x = _conv(x, width, kernel, f"side{i}_conv2")
        side[i] = layers.Conv2D(num_classes, 1, name=f"side{i}_score")(x)

    cache = {}

    def resized(i, m, target):
        factor = strides[i - 1] // strides[target - 1]
        if factor == 1:
            return m
        if (i, target) not in cache:  # one upsampling per (map, resolution), shared by its users
            cache[i, target] = layers.UpSampling2D(factor, interpolation="bilinear", name=f"side{i}_to{target}")(m)
        return cache[i, target]

    refined = {5: side[5], 6: side[6]}
    plan = ((4, (5, 6)), (3, (5, 6)), (2, (3, 4, 5, 6)), (1, (3, 4, 5, 6)))
    for target, deeper in plan:
        maps = [side[target]] + [resized(j, refined[j], target) for j in deeper]
        x = layers.Concatenate(name=f"short{target}_in")(maps)
        refined[target] = layers.Conv2D(num_classes, 1, use_bias=False, name=f"short{target}")(x)
    if not fusion:
        # The six refined (deeply supervised) side maps, as in the notes' layer list.
        return models.Model(inputs, [refined[i] for i in range(1, 7)], name=name or "dss")
    # The refined maps 3~ .. 6 at full resolution are the ones already made for side 1.
    maps = [resized(j, refined[j], 1) for j in range(1, 7)]
    x = layers.Concatenate(name="fusion_in")(maps)
    outputs = layers.Conv2D(num_classes, 1, use_bias=False, name="fusion")(x)
    return models.Model(inputs, outputs, name=name or "dss")


# ---------------------------------------------------------------------------------------------
# MobileNetV2 + DeepLabv3
# ---------------------------------------------------------------------------------------------
DEEPLAB_PAPER = Paper("Rethinking Atrous Convolution for Semantic Image Segmentation (DeepLabv3), "
                      "MobileNetV2 backbone", 2017, "https://arxiv.org/abs/1706.05587")

# MobileNetV2 (t, c, n, s) at output stride 8, as reconstructed by the audit: the stride of
# stages 4 and 6 is replaced by dilation 2 and 4.
MBV2_OS8 = ((1, 16, 1, 1, 1), (6, 24, 2, 2, 1), (6, 32, 3, 2, 1), (6, 64, 4, 1, 2), (6, 96, 3, 1, 2),
            (6, 160, 3, 1, 4), (6, 320, 1, 1, 4))


def _inverted_residual(x, expansion, out_ch, stride, dilation, name, *, expand_always=False):
    in_ch = x.shape[-1]
    hidden = in_ch * expansion
    y = x
    if expansion != 1 or expand_always:
        y = conv_bn_act(y, hidden, 1, activation="relu6", name=f"{name}_expand")
    y = depthwise_bn_act(y, 3, strides=stride, dilation=dilation, activation="relu6", name=f"{name}_dw")
    y = conv_bn_act(y, out_ch, 1, activation=None, name=f"{name}_project")
    if stride == 1 and in_ch == out_ch:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def mobilenet_v2_os8_features(x, *, block1_expansion=True, name="mbv2"):
    """MobileNetV2 features at output stride 8; returns (h/4 x 24 low-level, h/8 x 320 top).

    Kept here (not in ``architectures/mobilenet.py``) so the notes' variant (t=1 expansion conv
    in block 1, dilated stages) is self-contained; it uses the shared blocks only.
    """
    x = conv_bn_act(x, 32, 3, strides=2, activation="relu6", name=f"{name}_head")
    low, previous_dilation = None, 1
    for b, (t, c, n, s, d) in enumerate(MBV2_OS8, start=1):
        for u in range(n):
            # The first unit of a stage keeps the previous stage's dilation (DeepLab's convention).
            x = _inverted_residual(x, t, c, s if u == 0 else 1, previous_dilation if u == 0 else d,
                                   f"{name}_block{b}_unit{u + 1}", expand_always=block1_expansion and b == 1)
        previous_dilation = d
        if b == 2:
            low = x
    return low, x


def mobilenet_v2_deeplabv3(input_shape=(224, 224, 3), num_classes=1, block1_expansion=True,
                           atrous_rates=(12, 24, 36), name=None):
    """MobileNetV2 (output stride 8) + ASPP (1x1, three 3x3 atrous, image pooling) + 1x1
    projection, and the notes' simple decoder: 1x1 24 -> 48 on the h/4 feature, concat with the
    (bilinearly upsampled) ASPP output, 1x1 304 -> ``num_classes``, bilinear x4 to full size.

    Convs have no bias and are followed by BN (folded at inference: the notes count neither)."""
    _check_divisible(input_shape, 8, "mobilenet_v2_deeplabv3")
    h8, w8 = input_shape[0] // 8, input_shape[1] // 8
    inputs = image_input(input_shape)
    low, x = mobilenet_v2_os8_features(inputs, block1_expansion=block1_expansion)
    branches = [conv_bn_act(x, 256, 1, name="aspp0")]
    for i, rate in enumerate(atrous_rates, start=1):
        branches.append(conv_bn_act(x, 256, 3, dilation=rate, name=f"aspp{i}"))
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="aspp_gap")(x)
    pooled = conv_bn_act(pooled, 256, 1, name="aspp_gap_conv")
    branches.append(layers.UpSampling2D((h8, w8), interpolation="nearest", name="aspp_gap_broadcast")(pooled))
    x = layers.Concatenate(name="aspp_concat")(branches)
    x = conv_bn_act(x, 256, 1, name="aspp_projection")
    x = layers.UpSampling2D(2, interpolation="bilinear", name="decoder_up")(x)
    low = conv_bn_act(low, 48, 1, name="low_feature")
    x = layers.Concatenate(name="decoder_concat")([x, low])
    x = layers.Conv2D(num_classes, 1, use_bias=False, name="last_conv")(x)
    outputs = layers.UpSampling2D(4, interpolation="bilinear", name="output_up")(x)
    return models.Model(inputs, outputs, name=name or "mobilenet_v2_deeplabv3")


# ---------------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------------
def _reported(key, *, seed_params, corrected_params, seed_macs_224, corrected_macs_224, lines):
    convention = ("seed convention: params are weights only (no biases); MACs include pooling, "
                  "element-wise, upsampling and BN terms and full-kernel transposed convs")
    return (
        Reported(exactness="exact", primary=True, params=corrected_params, macs=corrected_macs_224, input_size=(224, 224),
                 source=f"saliency_audit.md / kbench/data/saliency_reference.json [{key}] (audit-corrected "
                        f"values of {SEED}, lines {lines})", convention=convention),
        Reported(exactness="derived", params=seed_params, macs=seed_macs_224, input_size=(224, 224),
                 source=f"{SEED}, lines {lines} (as stated; MACs = stated formula, b=1)", convention=convention),
    )


def _hw(coef, const=0, size=224):
    return coef * size * size + const


COMMON_NOTE = ("Params in the notes are weights only (no conv biases); kbench's params_trainable "
               "also counts biases. kbench 'macs' count conv/dense/transposed-conv only; the notes "
               "also charge pooling (k*k per output), element-wise ops, bilinear upsampling (8/output), "
               "BN and transposed convs at output resolution with the full kernel "
               "(see kbench.fit.seed_convention_ops).")

register_model(
    "pagrn", builder=pagrn, family="saliency", paper=PAGRN_PAPER, default_num_classes=1,
    min_input_size=(16, 16), test_input_size=(64, 64),
    reported=_reported("PAGRN-v1", seed_params=23625408, corrected_params=23822016,
                       seed_macs_224=_hw(805664 + 112), corrected_macs_224=_hw(412448 + 112, 393216),
                       lines="3-92"),
    notes=(COMMON_NOTE,
           "Input sides must be multiples of 16.",
           "First version of PAGRN in the notes (the second is pagrn_v2).",
           "recurrent_steps=1 (default): one recurrent step as the notes count it; the h/16 x 512 "
           "feedback state of step 1 is zeros, so its 1x1 recurrent convs run on zeros. T>1 unrolls.",
           "The feedback (1x1 conv at h/16) is upsampled (nearest) x4/x2 before the add; the notes "
           "do not count this upsampling (12*h*w in their convention).",
           "batch_norm_pooling '(b+1)^2' read as '(b+1)*2' (audit); BN cost 2*(b+1)*elements with b=1.",
           "attention: GAP -> Dense CxC (sigmoid) on the pooled vector (a constant, not per h*w: "
           "audit), spatial 1x1 conv CxC (sigmoid), x2 nearest upsample + 1x1 transition conv.",
           "attention3 has two 256x256 matrices (cost line): params 131072 (audit's consistent value).",
           "The attention stages form a chain att5 -> att4 -> att3 -> saliency map (h/4), as counted.",
           "Params compared with the notes: conv/dense kernels + BN gamma/beta."),
)
register_model(
    "pagrn_v2", builder=pagrn_v2, family="saliency", paper=PAGRN_PAPER, default_num_classes=1,
    min_input_size=(16, 16), test_input_size=(64, 64),
    reported=_reported("PAGRN-v2", seed_params=23164864, corrected_params=23361472,
                       seed_macs_224=_hw(803746), corrected_macs_224=_hw(410530, 393216), lines="566-618"),
    notes=(COMMON_NOTE, "Input sides must be multiples of 16.",
           "Second (plain) PAGRN of the notes: blocks 1-4 are VGG-19's first four blocks (shared "
           "vgg_features with a 4-block configuration), Block5 five 3x3 convs without pool.",
           "Attention as in pagrn (channel FC constant; attention3 params 131072)."),
)
register_model(
    "ucf", builder=ucf, family="saliency", paper=UCF_PAPER, default_num_classes=2,
    min_input_size=(32, 32), test_input_size=(64, 64),
    reported=_reported("UCF", seed_params=29420352, corrected_params=29420352,
                       seed_macs_224=_hw(612234), corrected_macs_224=_hw(612234), lines="492-564"),
    notes=(COMMON_NOTE, "Input sides must be multiples of 32.",
           "Decoder upsampling is bilinear x2 (8 ops/output in the notes), 2 output maps."),
)
register_model(
    "ucf_bn", builder=ucf, preset=dict(batch_norm=True), family="saliency", paper=UCF_PAPER,
    default_num_classes=2, min_input_size=(32, 32), test_input_size=(64, 64),
    reported=_reported("UCF-BN", seed_params=29428800, corrected_params=29436228,
                       seed_macs_224=_hw(613314 + 1080), corrected_macs_224=_hw(613134 + 900), lines="94-198"),
    notes=(COMMON_NOTE, "Input sides must be multiples of 32.",
           "BN after every conv, decoder BN over the conv's own output channels (audit's "
           "channel-consistent reading: decoder BN 360(b+1), 13 decoder BN layers add 7428 params).",
           "BN cost in the notes' convention 2*(b+1)*elements (b=1 here); params compared: kernels + BN gamma/beta."),
)
register_model(
    "mdf", builder=mdf, family="saliency", paper=MDF_PAPER, default_input_shape=(224, 224, 9),
    default_num_classes=2, min_input_size=(32, 32), test_input_size=(64, 64),
    reported=_reported("MDF", seed_params=24300040 + 1024 * 224 * 224, corrected_params=24300040 + 1024 * 224 * 224,
                       seed_macs_224=_hw(49846 + 24924, 3777000), corrected_macs_224=_hw(49845.5 + 24923.75, 37331432 + 16777216),
                       lines="200-252 (k=n=1)"),
    notes=(COMMON_NOTE, "Input sides must be multiples of 32; h x w is the region (warp) size, "
           "the input stacks region, neighbourhood and whole image as 9 channels.",
           "Registered model = one region evaluation: 3 passes of the shared extractor + the fusion "
           "MLP (3*4096 -> 300 -> 300 -> 2). Whole method: mdf_total_macs(E, M, h, w, n, k) = "
           "k*((2n+1)*E + n*M + h*w), E = one extractor pass, M = one MLP pass; with the notes' "
           "per-layer values k*((49845.5n + 24923.75)*h*w + 37331432n + 16777216) (audit).",
           "Extractor convs ungrouped (as the notes), 'same' padding so the map is h/32 x w/32; "
           "fc6 weights grow with h*w (1024*h*w).",
           "The notes' per-region extractor count is (2n+1) per segmentation; the registered model "
           "with k=n=1 differs from it by the k*h*w fusion term (1 op/pixel)."),
)
register_model(
    "rfcn", builder=rfcn, family="saliency", paper=RFCN_PAPER, default_input_shape=(224, 224, 4),
    default_num_classes=2, min_input_size=(32, 32), test_input_size=(64, 64),
    reported=_reported("RFCN", seed_params=52996868, corrected_params=134686464,
                       seed_macs_224=_hw(455736.171875), corrected_macs_224=_hw(455736.171875), lines="254-318"),
    notes=(COMMON_NOTE, "Input sides must be multiples of 32; 4 input channels (RGB + saliency prior).",
           "fc6 is 7x7 (cost line; audit's consistent value 102760448 params), score_pool3 included.",
           "Transposed convs: the notes charge out*k*k*Cin (full kernel at output resolution); TF and "
           "kbench charge 1/stride^2 of that (true 424652.421875*h*w in total).",
           "One pass, as the notes count it; passes=T unrolls the recurrent refinement with shared "
           "weights (T passes cost T times the MACs)."),
)
register_model(
    "ds", builder=ds, family="saliency", paper=DS_PAPER, default_num_classes=1,
    min_input_size=(32, 32), test_input_size=(64, 64),
    reported=_reported("DS", seed_params=50366207, corrected_params=134256193,
                       seed_macs_224=_hw(426687), corrected_macs_224=_hw(426687), lines="320-366"),
    notes=(COMMON_NOTE, "Input sides must be multiples of 32.",
           "conv6 7x7 (cost line; audit), deconv 63x63/32 with 3969 weights (no bias).",
           "The 63x63/32 transposed conv: notes 3969*h*w, kbench/TF 3969/1024*h*w."),
)
register_model(
    "dcl", builder=dcl, family="saliency", paper=DCL_PAPER, default_num_classes=1,
    min_input_size=(8, 8), test_input_size=(64, 64),
    reported=_reported("DCL", seed_params=66311872, corrected_params=66238144,
                       seed_macs_224=_hw(3030826), corrected_macs_224=_hw(1242814), lines="368-420"),
    notes=(COMMON_NOTE, "Input sides must be multiples of 8 (output stride 8).",
           "conv2_1 takes pool1's 64 channels (audit); conv5_x 3x3 dilation 2 and fc6 4x4 dilation 4 "
           "(the parameter line's kernels; audit's consistent reading, 897160*h*w for block5).",
           "The six side maps are upsampled bilinearly (not counted by the notes, 40*h*w in their "
           "convention) and fused by a 1x1 conv with 6 weights that the notes' params omit.",
           "Pixel-level stream only (segment-level stream and CRF not built).",
           "Dilated convs: TF pads through SpaceToBatchND when the rate does not divide the h/8 map, "
           "and the profiler counts that padded work; profiler MACs equal the analytic ones for inputs "
           "that are multiples of 32 (h/8 divisible by the rates 2 and 4)."),
)
register_model(
    "nldf", builder=nldf, family="saliency", paper=NLDF_PAPER, default_input_shape=(352, 352, 3),
    default_num_classes=2, min_input_size=(352, 352), test_input_size=(352, 352),
    reported=_reported("NLDF", seed_params=35478720, corrected_params=35478720,
                       seed_macs_224=_hw(2861540.75, 84115712, 352), corrected_macs_224=_hw(2861540.75, 84115712, 352),
                       lines="620-743 (MACs at 352x352)"),
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
register_model(
    "dss", builder=dss, family="saliency", paper=DSS_PAPER, default_num_classes=1,
    min_input_size=(32, 32), test_input_size=(64, 64),
    reported=_reported("DSS", seed_params=62217680, corrected_params=62217680,
                       seed_macs_224=_hw(984054.484375), corrected_macs_224=_hw(958966.984375), lines="745-841"),
    notes=(COMMON_NOTE, "Input sides must be multiples of 32.",
           "Short connections: side4 <- (4,5,6), side3 <- (3,5,6), side2/side1 <- (own, 3~, 4~, 5, 6), "
           "each a 1x1 conv (3 or 5 weights), deeper maps bilinearly upsampled (not counted by the notes).",
           "fusion=True (default) adds DSS's final 1x1 conv over the six refined maps (6 weights, "
           "6*h*w MACs) that the notes omit; fusion=False matches the notes' layer list and outputs the "
           "six refined side maps (finest first)."),
)
register_model(
    "mobilenet_v2_deeplabv3", builder=mobilenet_v2_deeplabv3, family="saliency", paper=DEEPLAB_PAPER,
    default_num_classes=1, min_input_size=(16, 16),
    # h/8 a multiple of every atrous rate (see notes): the profiler then agrees with the analytic count.
    test_input_size=(576, 576),
    reported=_reported("MobileNetV2+DeepLabv3", seed_params=4486000, corrected_params=4486000,
                       seed_macs_224=_hw(70567, 81920), corrected_macs_224=_hw(70567.25, 81920), lines="422-490"),
    notes=(COMMON_NOTE, "Input sides must be multiples of 8 (output stride 8).",
           "MobileNetV2 backbone built in this file from the shared blocks (not architectures/mobilenet.py), "
           "at output stride 8 (stages 4 and 6 dilated instead of strided), block 1 with a t=1 1x1 "
           "expansion conv as the notes count (block1_expansion=False gives standard MobileNetV2).",
           "Convs without bias + BN (folded at inference: the notes count neither BN cost nor BN params); "
           "residual adds, ASPP image pooling and decoder upsampling are not counted by the notes.",
           "ASPP atrous rates (12, 24, 36) at output stride 8.",
           "TF runs a dilated conv through SpaceToBatchND when the rate does not divide the feature "
           "size, and the profiler then counts the padded work (2.25x for rate 12 on an 8x8 map); "
           "kbench.profile's MACs equal the analytic count when h/8 and w/8 are multiples of every "
           "rate (inputs that are multiples of 576 for the default rates). The analytic count "
           "(kbench.macs, fit-flops --counter analytic) is the textbook one at every size."),
)
