"""Saliency-detection networks of the FLOPs notes (kbench/tables/saliency_notes.toml; every figure re-evaluated in ``reference.json``).

PAGRN (two versions), UCF (with and without BN), MDF, RFCN, DS, DCL, NLDF, DSS and
MobileNetV2 + DeepLabv3, built layer for layer from the notes' lists, one module per network
(``_shared`` holds what they share). Where the notes are ambiguous or inconsistent the audit's
stated reading is taken; every such choice is recorded in the model's ``notes`` metadata. The
VGG-16 backbones are ``architectures.vgg.vgg_features``; the MobileNetV2 units are
``architectures.mobilenet.inverted_residual``.

Conventions shared by all builders:

* ``num_classes`` is the number of output maps (channels of the final saliency/score map).
* Convolutions are "same"-padded with bias and ReLU (as in the VGG backbone) unless the notes
  say otherwise; score/prediction convs have no activation.
* Decoders re-align features of several resolutions, so most networks need input sides that
  are multiples of their total stride: each spec's ``input_multiple`` (checked by
  ``kbench.models.registry``; a direct builder call raises ``architectures.errors.InputShapeError``).
  Non-square inputs are fine.
* The notes' figures (stated and audit-corrected) are in ``reference.json`` next to these
  modules; each spec's ``reported`` is read from it.
* The notes' cost conventions (pooling, element-wise ops, bilinear upsampling, BN, transposed
  conv charged with the full kernel at output resolution) are reproduced by
  ``kbench.counting.fit.seed_convention_ops``; ``kbench.profile`` counts MACs of convs/dense only.
"""

# Imported in registration order (the order of ``kbench list``'s saliency rows before the split).
from architectures.saliency._shared import COMMON_NOTE, REFERENCE_FILE, SEED, reference_entries
from architectures.saliency.pagrn import PAGRN_PAPER, pagrn, pagrn_v2
from architectures.saliency.ucf import UCF_DECODER, UCF_PAPER, ucf
from architectures.saliency.mdf import MDF_PAPER, mdf, mdf_extractor, mdf_total_macs
from architectures.saliency.rfcn import RFCN_PAPER, rfcn
from architectures.saliency.ds import DS_PAPER, ds
from architectures.saliency.dcl import DCL_PAPER, dcl
from architectures.saliency.nldf import NLDF_PAPER, nldf
from architectures.saliency.dss import DSS_PAPER, DSS_SIDES, dss
from architectures.saliency.deeplab import DEEPLAB_PAPER, MBV2_OS8, mobilenet_v2_deeplabv3, mobilenet_v2_os8_features

__all__ = [
    "COMMON_NOTE", "REFERENCE_FILE", "SEED", "reference_entries",
    "PAGRN_PAPER", "UCF_PAPER", "MDF_PAPER", "RFCN_PAPER", "DS_PAPER", "DCL_PAPER", "NLDF_PAPER", "DSS_PAPER",
    "DEEPLAB_PAPER", "UCF_DECODER", "DSS_SIDES", "MBV2_OS8",
    "pagrn", "pagrn_v2", "ucf", "mdf", "mdf_extractor", "mdf_total_macs", "rfcn", "ds", "dcl", "nldf", "dss",
    "mobilenet_v2_deeplabv3", "mobilenet_v2_os8_features",
]
