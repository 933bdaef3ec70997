"""Channel / spatial attention plugins for bottleneck backbones (mmcv-style ``plugins``).

Every class here is a Keras layer that keeps the shape of its input ``(N, H, W, C)``, so it can
sit at any plugin position of ``architectures.resnet`` (after conv1 / conv2 / conv3). Each is
registered under a short type name for plugin configurations:

* ``"se"``   -- ``SqueezeExcitation``: Hu et al., squeeze (global average) and excitation
  (FC C->C/r, ReLU, FC C/r->C, sigmoid), both FC layers with bias.
* ``"msca"`` -- ``MultiSpectralChannelAttention``: FcaNet's multi-spectral channel attention. The
  squeeze is a fixed 2-D DCT projection (16 frequencies, "top16"), the excitation two FC layers
  without bias. The DCT filter bank is a constant computed from the configuration, never a weight.
* ``"dsm"``  -- ``DecoupledSelfAttention``: DSNet's decoupled self-attention module (the
  ``DSA`` class with fusion 'dsa').
* ``"dam"``  -- ``DecoupledAttention``: DSNet's decoupled attention module (fusion 'dam').

Everything is written with ``keras.ops`` only (any backend). Matrix products use
``keras.ops.matmul`` (never einsum, which the TF profiler cannot count). Shapes in comments are
NHWC; ``L = H * W``. The reference behaviour is DPC-Net's seg/models/utils/dsa.py (class DSA) and FcaNet's model/layer.py (github.com/cfzd/FcaNet).
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

from architectures.layers.plugins import register_plugin

# PyTorch's default LayerNorm / BatchNorm epsilon and BN momentum (0.1 in PyTorch = 0.9 in Keras).
_EPS = 1e-5
_BN_MOMENTUM = 0.9


def _kaiming_normal_fan_in():
    """PyTorch/mmengine ``kaiming_init(mode='fan_in', distribution='normal')``: N(0, 2 / fan_in)."""
    return keras.initializers.VarianceScaling(scale=2.0, mode="fan_in", distribution="untruncated_normal")


def _conv1x1(filters, *, use_bias, name, kernel_initializer="glorot_uniform"):
    return layers.Conv2D(filters, 1, use_bias=use_bias, kernel_initializer=kernel_initializer, name=name)


def _static_hw(input_shape, cls_name):
    if len(input_shape) != 4:
        raise ValueError(f"{cls_name} expects a 4-D (N, H, W, C) input, got shape {tuple(input_shape)}")
    h, w, c = input_shape[1], input_shape[2], input_shape[3]
    if c is None:
        raise ValueError(f"{cls_name} needs a known channel count, got shape {tuple(input_shape)}")
    return h, w, int(c)


# ------------------------------------------------------------------------------------------------
# SE and MSCA: one excitation, two squeezes
# ------------------------------------------------------------------------------------------------
class _ChannelGate(layers.Layer):
    """``x * sigmoid(fc2(relu(fc1(squeeze(x)))))``, FC layers C -> C // reduction (at least 1) -> C.

    Subclasses define the squeeze (N, H, W, C) -> (N, C) and call ``_build_gate`` from ``build``.
    """

    def __init__(self, reduction=16, bias=True, **kwargs):
        super().__init__(**kwargs)
        self.reduction = int(reduction)
        self.bias = bool(bias)
        if self.reduction < 1:
            raise ValueError(f"reduction must be >= 1, got {reduction!r}")
        self.fc1 = None
        self.fc2 = None

    def _build_gate(self, c):
        self.channels = c
        self.hidden = max(1, c // self.reduction)
        self.fc1 = layers.Dense(self.hidden, use_bias=self.bias, name="fc1")
        self.fc2 = layers.Dense(c, use_bias=self.bias, name="fc2")
        self.fc1.build((None, c))
        self.fc2.build((None, self.hidden))

    def squeeze(self, x):
        raise NotImplementedError

    def call(self, x):
        s = ops.relu(self.fc1(self.squeeze(x)))
        s = ops.sigmoid(self.fc2(s))
        return x * s[:, None, None, :]

    def compute_output_shape(self, input_shape):
        return input_shape


@register_plugin("se")
@keras.saving.register_keras_serializable(package="architectures")
class SqueezeExcitation(_ChannelGate):
    """Squeeze-and-excitation (Hu et al., 2018): ``x * sigmoid(fc2(relu(fc1(mean_hw(x)))))``.

    ``reduction``: the hidden width is ``C // reduction`` (at least 1). ``bias``: bias on both
    FC layers (True in the paper's SE-ResNet and in torchvision/timm-style SE modules).
    """

    def build(self, input_shape):
        _, _, c = _static_hw(input_shape, type(self).__name__)
        self._build_gate(c)

    def squeeze(self, x):
        return ops.mean(x, axis=(1, 2))  # (N, C)

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction, "bias": self.bias}


# ------------------------------------------------------------------------------------------------
# MSCA (FcaNet)
# ------------------------------------------------------------------------------------------------
# FcaNet 'top16' frequencies on a 7x7 grid, (u, v) = (row/height, column/width) frequency.
FCANET_TOP16 = ((0, 0), (0, 1), (6, 0), (0, 5), (0, 2), (1, 0), (1, 2), (4, 0),
                (5, 0), (1, 6), (3, 0), (0, 4), (0, 6), (0, 3), (3, 5), (2, 2))
# FcaNet's DCT size per stage (its c2wh table, keyed by the bottleneck's planes = C / 4 at
# after_conv3): the stage's feature-map size at 224x224 input.
FCANET_DCT_SIZE_BY_CHANNELS = {256: 56, 512: 28, 1024: 14, 2048: 7}


def _dct_basis(n: int, freq: int) -> np.ndarray:
    """Orthonormal DCT-II basis vector ``beta(p, f, n)`` for p = 0..n-1 (float64)."""
    p = np.arange(n, dtype=np.float64)
    basis = np.cos(math.pi * freq * (p + 0.5) / n) / math.sqrt(n)
    return basis * (math.sqrt(2.0) if freq != 0 else 1.0)


def _adaptive_pool_matrix(out_size: int, in_size: int) -> np.ndarray:
    """``(out, in)`` matrix of PyTorch's adaptive_avg_pool1d (bins floor(i*in/out)..ceil((i+1)*in/out))."""
    m = np.zeros((out_size, in_size), dtype=np.float64)
    for i in range(out_size):
        start = (i * in_size) // out_size
        end = -((-(i + 1) * in_size) // out_size)
        m[i, start:end] = 1.0 / (end - start)
    return m


def fcanet_dct_filter(channels: int, dct_h: int, dct_w: int, frequencies=FCANET_TOP16) -> np.ndarray:
    """FcaNet's DCT filter bank, shape ``(dct_h, dct_w, C)`` (NHWC; the reference stores (C, h, w)).

    Channels are split into ``len(frequencies)`` consecutive groups; group i uses frequency
    ``(u_i, v_i)`` scaled by ``dct_h // 7`` and ``dct_w // 7``.
    """
    num_freq = len(frequencies)
    if channels % num_freq:
        raise ValueError(f"MSCA needs channels divisible by {num_freq} frequencies, got {channels}")
    part = channels // num_freq
    bank = np.zeros((dct_h, dct_w, channels), dtype=np.float64)
    for i, (u, v) in enumerate(frequencies):
        u, v = u * (dct_h // 7), v * (dct_w // 7)
        bank[:, :, i * part:(i + 1) * part] = np.outer(_dct_basis(dct_h, u), _dct_basis(dct_w, v))[:, :, None]
    return bank


@register_plugin("msca")
@keras.saving.register_keras_serializable(package="architectures")
class MultiSpectralChannelAttention(_ChannelGate):
    """FcaNet multi-spectral channel attention (MSCA).

    ``y_c = sum_{h,w} pool(x)[h, w, c] * D[h, w, c]``, then ``x * sigmoid(fc2(relu(fc1(y))))``
    with bias-free FC layers (C -> C/reduction -> C).

    ``dct_size``: the DCT grid ``(h, w)`` (an int means square). ``None`` uses FcaNet's table
    (channels 256/512/1024/2048 -> 56/28/14/7, i.e. after_conv3 of ResNet stages 1-4) and, for a
    channel count outside it, the input's own spatial size. When the input's spatial size differs
    from the DCT grid the reference first applies ``adaptive_avg_pool2d`` to the grid; both maps
    are linear, so here the pooling is folded into the constant filter at build time (exactly the
    same result, computed as one multiply-and-sum). The filter is a backend constant rebuilt from
    the configuration: it is not a weight and is neither trained, counted nor saved.
    """

    def __init__(self, reduction=16, dct_size=None, freq_sel_method="top16", **kwargs):
        super().__init__(reduction=reduction, bias=False, **kwargs)
        if freq_sel_method != "top16":
            raise ValueError(f"unknown freq_sel_method {freq_sel_method!r}; allowed: top16")
        if isinstance(dct_size, (list, tuple)):
            dct_size = tuple(int(s) for s in dct_size)
        elif dct_size is not None:
            dct_size = (int(dct_size), int(dct_size))
        self.dct_size = dct_size
        self.freq_sel_method = freq_sel_method
        self._filter_np = None

    def build(self, input_shape):
        h, w, c = _static_hw(input_shape, type(self).__name__)
        if h is None or w is None:
            raise ValueError("MultiSpectralChannelAttention needs a static spatial input size")
        if self.dct_size is not None:
            dct_h, dct_w = self.dct_size
        elif c in FCANET_DCT_SIZE_BY_CHANNELS:
            dct_h = dct_w = FCANET_DCT_SIZE_BY_CHANNELS[c]
        else:
            dct_h, dct_w = h, w
        self.dct_grid = (dct_h, dct_w)  # read by counting conventions that charge the pooling
        bank = fcanet_dct_filter(c, dct_h, dct_w)
        # Fold adaptive average pooling (h, w) -> (dct_h, dct_w) into the filter: D' = Ph^T D Pw.
        if (h, w) != (dct_h, dct_w):
            ph, pw = _adaptive_pool_matrix(dct_h, h), _adaptive_pool_matrix(dct_w, w)
            folded = np.tensordot(ph, bank, axes=([0], [0]))              # (h, dct_w, C)
            bank = np.moveaxis(np.tensordot(folded, pw, axes=([1], [0])), -1, 1)  # (h, w, C)
        self._filter_np = bank.astype("float32")
        self._build_gate(c)

    def squeeze(self, x):
        dct = ops.cast(ops.convert_to_tensor(self._filter_np), x.dtype)
        return ops.sum(x * dct[None], axis=(1, 2))  # (N, C): DCT projection, element-wise

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction,
                "dct_size": list(self.dct_size) if self.dct_size else None,
                "freq_sel_method": self.freq_sel_method}


# ------------------------------------------------------------------------------------------------
# DSNet: DSM and DAM
# ------------------------------------------------------------------------------------------------
class _DecoupledAttentionBase(layers.Layer):
    """Steps 1-5 shared by DSM and DAM: channel attention Ac, spatial attention As, their series
    (outer product) and parallel (sum) recoupling, fused by a 2-path selective-kernel attention.

    ``ratio``: internal width ``IC = C // ratio``. ``bias``: bias on the attention convs
    (q/v right, q/v left, conv_up) and, for DSM, on the value conv; the SK convs never have one.
    """

    def __init__(self, ratio=2, bias=False, **kwargs):
        super().__init__(**kwargs)
        self.ratio = int(ratio)
        self.bias = bool(bias)
        if self.ratio < 1:
            raise ValueError(f"ratio must be >= 1, got {ratio!r}")

    def _build_common(self, input_shape):
        _, _, c = _static_hw(input_shape, type(self).__name__)
        ic = c // self.ratio
        if ic < 1:
            raise ValueError(f"{type(self).__name__}: channels {c} // ratio {self.ratio} is 0")
        self.channels, self.inter_channels = c, ic
        b = self.bias
        he = _kaiming_normal_fan_in
        # Channel-attention branch (GCNet-style attention pooling).
        self.conv_q_right = _conv1x1(1, use_bias=b, kernel_initializer=he(), name="conv_q_right")
        self.conv_v_right = _conv1x1(ic, use_bias=b, kernel_initializer=he(), name="conv_v_right")
        self.up_norm = layers.LayerNormalization(axis=-1, epsilon=_EPS, name="conv_up_norm")
        self.conv_up = _conv1x1(c, use_bias=b, name="conv_up")
        # Spatial-attention branch.
        self.conv_q_left = _conv1x1(ic, use_bias=b, kernel_initializer=he(), name="conv_q_left")
        self.conv_v_left = _conv1x1(ic, use_bias=b, kernel_initializer=he(), name="conv_v_left")
        # Selective-kernel fusion of the two recouplings (timm SelectiveKernelAttn, 2 paths).
        self.sk_fc_reduce = _conv1x1(ic, use_bias=False, name="sk_fc_reduce")
        self.sk_bn = layers.BatchNormalization(epsilon=_EPS, momentum=_BN_MOMENTUM, name="sk_bn")
        self.sk_fc_select = _conv1x1(2 * c, use_bias=False, name="sk_fc_select")

        full = (None, None, None, c)
        for conv in (self.conv_q_right, self.conv_v_right, self.conv_q_left, self.conv_v_left):
            conv.build(full)
        self.up_norm.build((None, 1, 1, ic))
        self.conv_up.build((None, 1, 1, ic))
        self.sk_fc_reduce.build((None, 1, 1, c))
        self.sk_bn.build((None, 1, 1, ic))
        self.sk_fc_select.build((None, 1, 1, ic))

    def _fused_attention(self, x, training=None):
        """The SK-fused attention map A, shape (N, L, C)."""
        n_h_w = ops.shape(x)
        c, ic = self.channels, self.inter_channels
        length = n_h_w[1] * n_h_w[2]

        # 1. Channel attention Ac (N, 1, C).
        v = ops.reshape(self.conv_v_right(x), (-1, length, ic))        # (N, L, IC)
        q = ops.reshape(self.conv_q_right(x), (-1, 1, length))         # (N, 1, L)
        q = ops.softmax(q, axis=-1)
        ctx = ops.matmul(q, v)                                         # (N, 1, IC): IC*L MACs
        ctx = ops.reshape(ctx, (-1, 1, 1, ic))
        ac = self.conv_up(ops.relu(self.up_norm(ctx)))                 # (N, 1, 1, C)
        ac = ops.reshape(ops.sigmoid(ac), (-1, 1, c))

        # 2. Spatial attention As (N, L, 1).
        g = ops.max(self.conv_q_left(x), axis=(1, 2))                  # global max pool: (N, IC)
        g = ops.reshape(ops.softmax(g, axis=-1), (-1, ic, 1))          # softmax over channels
        t = ops.reshape(self.conv_v_left(x), (-1, length, ic))         # (N, L, IC)
        s = ops.sigmoid(ops.matmul(t, g))                              # (N, L, 1): IC*L MACs

        # 3./4. Series (outer product, C*L MACs) and parallel recoupling, both (N, L, C).
        series = ops.matmul(s, ac)
        parallel = s + ac

        # 5. Selective-kernel fusion over the two paths.
        pooled = ops.mean(series + parallel, axis=1)                   # (N, C)
        z = self.sk_fc_reduce(ops.reshape(pooled, (-1, 1, 1, c)))
        z = ops.relu(self.sk_bn(z, training=training))
        z = self.sk_fc_select(z)                                       # (N, 1, 1, 2C)
        w = ops.softmax(ops.reshape(z, (-1, 2, c)), axis=1)            # softmax over the paths
        return series * w[:, 0:1, :] + parallel * w[:, 1:2, :]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "ratio": self.ratio, "bias": self.bias}


@register_plugin("dsm")
@keras.saving.register_keras_serializable(package="architectures")
class DecoupledSelfAttention(_DecoupledAttentionBase):
    """DSNet decoupled self-attention module (DSM; ``DSA(fusion_type='dsa')``).

    The fused map A becomes a per-channel softmax over positions M; the value is
    ``V = relu(conv_res(x))`` (C->C); the output is ``x + sum_L(V * M)``, one learned offset per
    channel and sample broadcast over the map.
    """

    def build(self, input_shape):
        self._build_common(input_shape)
        self.conv_res = _conv1x1(self.channels, use_bias=self.bias, name="conv_res")
        self.conv_res.build((None, None, None, self.channels))

    def call(self, x, training=None):
        a = self._fused_attention(x, training=training)               # (N, L, C)
        m = ops.softmax(a, axis=1)                                     # per channel over L
        shape = ops.shape(x)
        value = ops.relu(self.conv_res(x))
        value = ops.reshape(value, (-1, shape[1] * shape[2], self.channels))
        g = ops.sum(value * m, axis=1)                                 # (N, C)
        return x + g[:, None, None, :]


@register_plugin("dam")
@keras.saving.register_keras_serializable(package="architectures")
class DecoupledAttention(_DecoupledAttentionBase):
    """DSNet decoupled attention module (DAM; ``DSA(fusion_type='dam')``).

    ``x * sigmoid(conv_combine(A))`` with a C->C 1x1 conv that always has a bias (the module's
    ``bias`` flag only applies to the attention convs, as in the reference).
    """

    def build(self, input_shape):
        self._build_common(input_shape)
        self.conv_combine = _conv1x1(self.channels, use_bias=True, name="conv_combine")
        self.conv_combine.build((None, None, None, self.channels))

    def call(self, x, training=None):
        a = self._fused_attention(x, training=training)               # (N, L, C)
        shape = ops.shape(x)
        a = ops.reshape(a, (-1, shape[1], shape[2], self.channels))
        return x * ops.sigmoid(self.conv_combine(a))
