"""PAGRN, both versions of the notes: recurrent + BN-pooling (``pagrn``) and plain (``pagrn_v2``)."""

from __future__ import annotations

import keras
from keras import layers, models

from architectures._registry import Paper, register_model
from architectures.errors import ConfigError
from architectures.layers import image_input
from architectures.layers.saliency import ZeroState
from architectures.saliency._shared import COMMON_NOTE, check_input_multiple, conv, reference_reported
from architectures.vgg import vgg_features

INPUT_MULTIPLE = 16  # decoder re-aligns features of stride 16: input sides must be multiples of it

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
        x = conv(x, transition, 1, f"{name}_transition")
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
            x = conv(x, width, 3, f"block{block}_conv{c}")
        x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"batch_norm_pooling_{block}_bn")(x)
        x = layers.MaxPooling2D(2, name=f"batch_norm_pooling_{block}_pool")(x)
        feedback = layers.Conv2D(width, 1, name=f"recurrent_{block}")(state)
        if up > 1:
            feedback = layers.UpSampling2D(up, interpolation="nearest", name=f"recurrent_{block}_up")(feedback)
        x = layers.Add(name=f"add_recurrent_{block}")([x, feedback])
    for c in range(1, 6):
        x = conv(x, 512, 3, f"block5_conv{c}")
    return x


def pagrn(input_shape=(224, 224, 3), num_classes=1, recurrent_steps=1, name=None):
    """PAGRN, first version of the notes (seed lines 3-92): recurrent feedback + BN-pooling.

    ``recurrent_steps`` T: the notes count one step. Step 1's feedback state is zeros (an RNN's
    initial state), so T=1 has exactly the counted layers; T>1 unrolls with shared weights and
    feeds each step the previous step's Block5 output (MACs grow ~T times).
    """
    check_input_multiple(input_shape, INPUT_MULTIPLE, "pagrn")
    if isinstance(recurrent_steps, bool) or not isinstance(recurrent_steps, int) or recurrent_steps < 1:
        raise ConfigError("recurrent_steps", recurrent_steps, "allowed: integers >= 1")
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
    check_input_multiple(input_shape, INPUT_MULTIPLE, "pagrn_v2")
    inputs = image_input(input_shape)
    _, x = vgg_features(inputs, ((3, 3), (3, 3), (3, 3, 3, 3), (3, 3, 3, 3)), name="block")
    for c in range(1, 6):
        x = conv(x, 512, 3, f"block5_conv{c}")
    outputs = _pagrn_head(x, num_classes)
    return models.Model(inputs, outputs, name=name or "pagrn_v2")


register_model(
    "pagrn", builder=pagrn, family="saliency", input_multiple=INPUT_MULTIPLE,
    paper=PAGRN_PAPER, default_num_classes=1,
    min_input_size=(16, 16), test_input_size=(64, 64),
    reported=reference_reported("PAGRN-v1", lines="3-92", b=1),
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
    "pagrn_v2", builder=pagrn_v2, family="saliency", input_multiple=INPUT_MULTIPLE,
    paper=PAGRN_PAPER, default_num_classes=1,
    min_input_size=(16, 16), test_input_size=(64, 64),
    reported=reference_reported("PAGRN-v2", lines="566-618"),
    notes=(COMMON_NOTE, "Input sides must be multiples of 16.",
           "Second (plain) PAGRN of the notes: blocks 1-4 are VGG-19's first four blocks (shared "
           "vgg_features with a 4-block configuration), Block5 five 3x3 convs without pool.",
           "Attention as in pagrn (channel FC constant; attention3 params 131072)."),
)
