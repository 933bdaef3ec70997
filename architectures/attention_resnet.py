"""Attention-augmented ResNet-50s: SE-ResNet, FcaNet and DSNet, as plugin presets.

Every model here is ``architectures.resnet.resnet(depth=50)`` (torchvision v1.5 layout, no conv
bias) with a ``plugins`` list; the plugin layers are in ``architectures.layers.attention``. Any
other placement is a ``--set plugins=[...]`` away, e.g.
``kbench profile resnet50 --set 'plugins=[{"type":"dsm","stages":[0,0,1,1],"position":"after_conv2","ratio":4}]'``.

Reference numbers: the DSNet README (github.com/605671435/DPC-Net, README.md at commit 1dda766; kbench's
table files ``kbench/tables/dsnet_*.toml`` transcribe it) and independent recounts of every README
figure under mmengine's counting rules (mmengine/analysis/complexity_analysis.py, jit_handles.py).

Counting conventions, to compare like with like:

* params: the README's are mmengine ``parameter_count`` (trainable weights plus the heads the
  model owns; buffers such as BN statistics and FcaNet's DCT filter excluded); kbench's
  ``params_trainable`` is the same quantity.
* MACs: the README's "FLOPS" are mmengine MACs of ``extract_feat`` at 224x224 -- **no classifier
  head**, and BatchNorm (eval) counted as 2 per element, LayerNorm as 5 per element. kbench's
  ``macs`` count only Conv2D/MatMul/BatchMatMul work, **with** the head (2,048,000 at 1000
  classes). So ``kbench macs = README MACs - 2 x (BN output elements) - 7 x IC per DSM/DAM
  (its LayerNorm and BN on IC-vectors) + 2,048,000``; the ResNet-50 trunk has 11,113,984 BN
  output elements at 224x224 (22,227,968 "FLOPs"), the same in all these models.
  ``tests/test_attention.py`` applies exactly this conversion.
"""

from __future__ import annotations

from architectures._registry import Paper, Reported, register_model
from architectures.resnet import resnet

ALL_STAGES = (True, True, True, True)

SE_PAPER = Paper("Squeeze-and-Excitation Networks", 2018, "https://arxiv.org/abs/1709.01507")
FCANET_PAPER = Paper("FcaNet: Frequency Channel Attention Networks", 2021, "https://arxiv.org/abs/2012.11879")
DSNET_PAPER = Paper("DSNet: decoupled self-attention network (DSNet-ImageNet-COCO README, 605671435/DPC-Net)",
                    2023, "https://github.com/605671435/DPC-Net")

README = "DSNet README (github.com/605671435/DPC-Net, README.md), ImageNet1K table"
MMPRETRAIN_CONVENTION = ("mmpretrain get_flops at 224x224: params = all trainable weights incl. heads; "
                         "FLOPs = mmengine MACs of extract_feat (no fc head), BN 2/elem, LN 5/elem")
SPEC_CONVENTION = "exact recount with mmengine rules (head excluded from MACs, BN 2/elem, LN 5/elem), 224x224"
CONVERSION_NOTE = (
    "MAC convention: kbench macs = conv/matmul only with the fc head; the README's MACs (and mmengine recounts) exclude the head "
    "(-2,048,000) and add BN at 2/elem (+22,227,968 for the ResNet-50 trunk at 224) and, per DSM/DAM, "
    "LayerNorm+BN on IC-vectors (+7*IC). After that conversion the figures agree (tests/test_attention.py).")

_COMMON = dict(
    builder=resnet,
    family="attention_resnet",
    default_input_shape=(224, 224, 3),
    min_input_size=(32, 32),
    test_input_size=(64, 64),
)


def _preset(*plugins):
    return dict(depth=50, plugins=[dict(p) for p in plugins])


register_model(
    "se_resnet50",
    preset=_preset({"type": "se", "stages": ALL_STAGES, "position": "after_conv3", "reduction": 16}),
    paper=SE_PAPER,
    reported=(
        Reported(exactness="exact", primary=True, params=28_088_024,
                 source="derived: ResNet-50 v1.5 25,557,032 + SE fc layers with bias, "
                        "sum over the 16 blocks of C*C/8 + C/16 + C = 2,531,008",
                 convention="trainable params (torchvision-style SE: both fc layers with bias)"),
        Reported(exactness="derived", macs=3.87e9, source="SE paper Table 2, SE-ResNet-50 3.87 GFLOPs (ResNet-50: 3.86)",
                 convention="original v1 layout (stride in the first 1x1 conv), 224x224", input_size=(224, 224)),
    ),
    notes=(
        "SE after conv3+BN3, before the residual add, in every block (as in the paper's SE-ResNet); "
        "reduction 16, both fc layers with bias.",
        "v1.5 layout (stride on the 3x3 conv): about 0.23 G more MACs than the paper's v1 layout, so the paper's "
        "3.87 G is not comparable; the SE fc layers add exactly sum(C*C/8) = 2,514,944 MACs to resnet50, the "
        "same as FcaNet's MSCA.",
    ),
    **_COMMON,
)

register_model(
    "fcanet50",
    preset=_preset({"type": "msca", "stages": ALL_STAGES, "position": "after_conv3", "reduction": 16}),
    paper=FCANET_PAPER,
    reported=(
        Reported(exactness="exact", primary=True, params=28_071_976, source="FcaNet paper, FcaNet-50 28.07M (= ResNet-50 25,557,032 + MSCA 2,514,944: 2 x C^2/16 per block)",
                 convention="trainable params; DCT filter not counted"),
        Reported(exactness="derived", params=30_121_000, macs=4.112e9, source=f"{README}, row 'FcaNet50' (30.121M / 4.112G)",
                 convention=MMPRETRAIN_CONVENTION, input_size=(224, 224)),
        Reported(exactness="derived", macs=4.1119e9, source="an independent recount under mmengine's rules (conv/linear MACs with bias ignored, BN 2/element, LN 5/element, head excluded): ResNet-50 4,109,364,224 + 2,514,944",
                 convention=SPEC_CONVENTION, input_size=(224, 224)),
    ),
    notes=(
        "MSCA after conv3+BN3, before the residual add, in every block; top16 frequencies, reduction 16, "
        "bias-free fc layers; DCT grid 56/28/14/7 per stage (FcaNet's c2wh). At other input sizes the reference "
        "adaptive-average-pools to that grid; here the pooling is folded into the constant DCT filter (same result).",
        "The DCT filter (5,519,360 values at 224x224) is a fixed constant, not a weight, so it is in no parameter "
        "count, as in the reference (a registered buffer).",
        "README 30.121M = 28,071,976 + 2,049,000: an unused second classifier (the torchvision-style fcanet50 "
        "backbone keeps its own fc under mmpretrain's LinearClsHead); it never runs, so it is not in the FLOPs. "
        "kbench builds one head only and matches the paper's 28.07M.",
        CONVERSION_NOTE,
    ),
    **_COMMON,
)

register_model(
    "dsnet50_a",
    preset=_preset({"type": "dsm", "stages": (False, False, False, True), "position": "after_conv2",
                    "ratio": 2, "bias": True}),
    paper=DSNET_PAPER,
    reported=(
        Reported(exactness="derived", primary=True, params=29_106_000, macs=4.208e9,
                 source=f"{README}, row labelled 'DSNet50-B' (29.106M / 4.208G): the A/B labels of that table are "
                        "swapped (the README's architecture table, configs and COCO/segmentation tables agree)", convention=MMPRETRAIN_CONVENTION, input_size=(224, 224)),
        Reported(exactness="derived", params=29_105_963, macs=4.2075e9, source="an independent recount under mmengine's rules (conv/linear MACs with bias ignored, BN 2/element, LN 5/element, head excluded)",
                 convention=SPEC_CONVENTION, input_size=(224, 224)),
    ),
    notes=(
        "DSM (DSA fusion 'dsa') after conv2 of every block of stage 4 (C=512), ratio 2, bias on the attention "
        "and value convs, as in r50_ex_a_in1k.py; the SK convs have no bias.",
        "The README's ImageNet table prints this model's numbers on the 'DSNet50-B' row (labels swapped; the "
        "architecture table, configs, COCO and segmentation tables agree with this assignment).",
        "Value branch: relu(conv) as in the code (the paper writes a sigmoid). COCO 45.302M is a Faster R-CNN "
        "total and is not comparable with this classifier.",
        CONVERSION_NOTE,
    ),
    **_COMMON,
)

register_model(
    "dsnet50_b",
    preset=_preset({"type": "dsm", "stages": ALL_STAGES, "position": "after_conv1", "ratio": 16, "bias": False}),
    paper=DSNET_PAPER,
    reported=(
        Reported(exactness="derived", primary=True, params=27_369_000, macs=4.357e9,
                 source=f"{README}, row labelled 'DSNet50-A' (27.369M / 4.357G): A/B labels swapped",
                 convention=MMPRETRAIN_CONVENTION, input_size=(224, 224)),
        Reported(exactness="derived", params=27_369_368, macs=4.4951e9,
                 source="an independent recount under mmengine's rules (conv/linear MACs with bias ignored, BN 2/element, LN 5/element, head excluded), after_conv1 (the position built here)",
                 convention=SPEC_CONVENTION, input_size=(224, 224)),
        Reported(exactness="derived", macs=4.3567e9, source="an independent recount under mmengine's rules (conv/linear MACs with bias ignored, BN 2/element, LN 5/element, head excluded), after_conv2",
                 convention=SPEC_CONVENTION + "; DSM after conv2 instead of conv1", input_size=(224, 224),
                 variant=_preset({"type": "dsm", "stages": ALL_STAGES, "position": "after_conv2", "ratio": 16,
                                  "bias": False})),
    ),
    notes=(
        "DSM in every block of all 4 stages after conv1 (C=64/128/256/512 at the block's input resolution), "
        "ratio 16, no bias, as in the architecture table and r50_ex_b_in1k.py.",
        "Params match the README exactly, but its 4.357G (and 14.172M activations) correspond to DSM after "
        "conv2 (mmengine recount: 4.3567G) while this after_conv1 build is 4.4951G (+3.2%); the segmentation and COCO "
        "FLOPs of DSNet50-B match after_conv1. Unresolved in the sources; after_conv2 is one --set away.",
        CONVERSION_NOTE,
    ),
    **_COMMON,
)

register_model(
    "dsnet50_c",
    preset=_preset(
        {"type": "dam", "stages": (False, False, True, False), "position": "after_conv2", "ratio": 2, "bias": True},
        {"type": "dsm", "stages": (False, False, False, True), "position": "after_conv2", "ratio": 2, "bias": True},
    ),
    paper=DSNET_PAPER,
    reported=(
        Reported(exactness="derived", primary=True, params=30_885_425, macs=4.402e9,
                 source="a computation under mmengine's rules for ratio 2, bias True ("
                        "no published figure exists)",
                 convention=SPEC_CONVENTION, input_size=(224, 224)),
    ),
    notes=(
        "Only named in the README's architecture table (None, None, DAM, DSM; after conv2); no README row, "
        "paper figure or config gives its ratio, bias or numbers.",
        "Chosen here (not published): ratio 2 and bias True for both modules, i.e. DSNet50-A (same DSM, same "
        "position) plus DAM in stage 3 (C=256). The DAM gate conv always has a bias. With ratio 16 / no bias "
        "the same computation gives 27,258,152 params and 4.248 G.",
        CONVERSION_NOTE,
    ),
    **_COMMON,
)
