"""UCF: VGG-16 encoder and a bilinear-upsampling decoder, with (``ucf_bn``) and without BN."""

from __future__ import annotations

from keras import layers, models

from architectures._registry import Paper, register_model
from architectures.layers import image_input
from architectures.saliency._shared import COMMON_NOTE, check_input_multiple, conv, reference_reported
from architectures.vgg import vgg_features

INPUT_MULTIPLE = 32  # decoder re-aligns features of stride 32: input sides must be multiples of it

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
    check_input_multiple(input_shape, INPUT_MULTIPLE, "ucf")
    inputs = image_input(input_shape)
    _, x = vgg_features(inputs, "D", batch_norm=batch_norm, name="block")
    for stage, widths in UCF_DECODER:
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{stage}_up")(x)
        for c, width in enumerate(widths, start=1):
            last = width is None
            x = conv(x, num_classes if last else width, 3, f"{stage}_conv{c}", norm=batch_norm,
                      activation=None if last else "relu")
    return models.Model(inputs, x, name=name or ("ucf_bn" if batch_norm else "ucf"))


register_model(
    "ucf", builder=ucf, family="saliency", input_multiple=INPUT_MULTIPLE,
    paper=UCF_PAPER, default_num_classes=2,
    min_input_size=(32, 32), test_input_size=(64, 64),
    reported=reference_reported("UCF", lines="492-564"),
    notes=(COMMON_NOTE, "Input sides must be multiples of 32.",
           "Decoder upsampling is bilinear x2 (8 ops/output in the notes), 2 output maps."),
)
register_model(
    "ucf_bn", builder=ucf, preset=dict(batch_norm=True), family="saliency", input_multiple=INPUT_MULTIPLE,
    paper=UCF_PAPER,
    default_num_classes=2, min_input_size=(32, 32), test_input_size=(64, 64),
    reported=reference_reported("UCF-BN", lines="94-198", b=1),
    notes=(COMMON_NOTE, "Input sides must be multiples of 32.",
           "BN after every conv, decoder BN over the conv's own output channels (audit's "
           "channel-consistent reading: decoder BN 360(b+1), 13 decoder BN layers add 7428 params).",
           "BN cost in the notes' convention 2*(b+1)*elements (b=1 here); params compared: kernels + BN gamma/beta."),
)
