"""The exact convolution merges of MemSR (Sec. 3.2), as functions on conv parameters.

A :class:`ConvParams` is a stride-1, 'same'-padded, zero-padded convolution with an optional kernel on a constant
all-ones input channel (the paper's ``one_pad``): ``y = W * pad0(x) + O * pad0(1) + b``. The ones channel is zero
padded like any other channel, so ``O * pad0(1)`` is NOT constant near the borders: it is exactly the term a bias
of a preceding 1x1 conv produces when the following conv zero-pads its output (Lemma 3.1). Where ``O`` is non-zero
only at the centre tap, ``O * pad0(1)`` is a constant and folds into ``b`` (:func:`fold_ones`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class NotConvertibleError(ValueError):
    """A module or topology that the exact conversion cannot express; the message names the module."""


@dataclass
class ConvParams:
    """``y = weight * pad0(x) + ones * pad0(1) + bias``; ``weight`` is (out, in, k, k), ``ones`` (out, k, k)."""

    weight: Tensor
    bias: Tensor
    ones: Tensor | None = None

    @property
    def kernel_size(self) -> int:
        return self.weight.shape[-1]

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1]

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    def to(self, dtype: torch.dtype) -> 'ConvParams':
        ones = None if self.ones is None else self.ones.to(dtype)
        return ConvParams(self.weight.to(dtype), self.bias.to(dtype), ones)


def from_conv(conv: nn.Conv2d, name: str = '') -> ConvParams:
    """The parameters of a plain conv (odd square kernel, stride 1, no dilation, no groups, zero 'same' padding)."""
    k = conv.kernel_size
    problems = [why for bad, why in (
        (k[0] != k[1] or k[0] % 2 == 0, f'kernel {k} is not odd and square'),
        (conv.stride != (1, 1), f'stride {conv.stride}'), (conv.dilation != (1, 1), f'dilation {conv.dilation}'),
        (conv.groups != 1, f'groups={conv.groups}'),
        (conv.padding_mode != 'zeros', f'padding_mode {conv.padding_mode}'),
        (conv.padding != (k[0] // 2, k[1] // 2), f'padding {conv.padding} is not "same"')) if bad]
    if problems:
        raise NotConvertibleError(f'{name or type(conv).__name__}: cannot convert a conv with {", ".join(problems)}')
    weight = conv.weight.detach().double()
    bias = conv.bias.detach().double() if conv.bias is not None else weight.new_zeros(weight.shape[0])
    return ConvParams(weight.clone(), bias.clone())


def pad_kernel(kernel: Tensor, size: int) -> Tensor:
    """``pad_h``: zero-pad the last two (odd, square) dims of a kernel to ``size`` x ``size``, centred."""
    p = (size - kernel.shape[-1]) // 2
    return F.pad(kernel, (p, p, p, p))


def _ones_or_zeros(p: ConvParams, size: int) -> Tensor:
    ones = p.ones if p.ones is not None else p.weight.new_zeros(p.out_channels, p.kernel_size, p.kernel_size)
    return pad_kernel(ones, size)


def _with_ones(weight: Tensor, bias: Tensor, ones: Tensor) -> ConvParams:
    return ConvParams(weight, bias, ones if ones.abs().sum() > 0 else None)


def concat_outputs(a: ConvParams, b: ConvParams) -> ConvParams:
    """Eq. 2: two convs on the same input as one conv whose output is ``cat(a(x), b(x))``."""
    k = max(a.kernel_size, b.kernel_size)
    return _with_ones(torch.cat([pad_kernel(a.weight, k), pad_kernel(b.weight, k)]), torch.cat([a.bias, b.bias]),
                      torch.cat([_ones_or_zeros(a, k), _ones_or_zeros(b, k)]))


def block_diagonal(a: ConvParams, b: ConvParams) -> ConvParams:
    """Eq. 1: two convs on different inputs as one conv mapping ``cat(x, z)`` to ``cat(a(x), b(z))``."""
    k = max(a.kernel_size, b.kernel_size)
    weight = a.weight.new_zeros(a.out_channels + b.out_channels, a.in_channels + b.in_channels, k, k)
    weight[:a.out_channels, :a.in_channels] = pad_kernel(a.weight, k)
    weight[a.out_channels:, a.in_channels:] = pad_kernel(b.weight, k)
    return _with_ones(weight, torch.cat([a.bias, b.bias]), torch.cat([_ones_or_zeros(a, k), _ones_or_zeros(b, k)]))


def sum_outputs(a: ConvParams, b: ConvParams) -> ConvParams:
    """Two convs on the same input whose outputs are added, as one conv (kernels padded to the larger size)."""
    k = max(a.kernel_size, b.kernel_size)
    return _with_ones(pad_kernel(a.weight, k) + pad_kernel(b.weight, k), a.bias + b.bias,
                      _ones_or_zeros(a, k) + _ones_or_zeros(b, k))


def pointwise(matrix: Tensor, bias: Tensor | None = None) -> ConvParams:
    """A 1x1 conv from an (out, in) matrix."""
    return ConvParams(matrix[:, :, None, None].clone(), matrix.new_zeros(matrix.shape[0]) if bias is None else bias)


def identity(channels: int, offset: float = 0.0, dtype: torch.dtype = torch.float64) -> ConvParams:
    """The identity conv ID (Sec. 3.2) with bias ``offset``: the skip branch as a 1x1 conv."""
    return pointwise(torch.eye(channels, dtype=dtype), torch.full((channels,), float(offset), dtype=dtype))


def add_as_conv(channels: int, scales: tuple[float, ...] = (1.0, 1.0), dtype: torch.dtype = torch.float64
                ) -> ConvParams:
    """The add at the end of a skip as the 1x1 conv T = Conv(C, nC, 1) of Prop. 3.6: ``sum_j s_j x_j``."""
    eye = torch.eye(channels, dtype=dtype)
    return pointwise(torch.cat([s * eye for s in scales], dim=1))


def then_pointwise(a: ConvParams, t: ConvParams) -> ConvParams:
    """``t(a(x))`` for a 1x1 ``t`` after any ``a``: exact everywhere, since ``t`` acts pixel by pixel on ``a``'s
    output (no padding between them), so ``t``'s weights and bias simply compose into ``a``'s."""
    if t.kernel_size != 1:
        raise ValueError('then_pointwise: the second conv must be 1x1')
    m = t.weight[:, :, 0, 0]
    ones = None if a.ones is None else torch.einsum('oc,ckl->okl', m, a.ones)
    bias = m @ a.bias + t.bias + (0 if t.ones is None else t.ones[:, 0, 0])
    return ConvParams(torch.einsum('oc,cikl->oikl', m, a.weight), bias, ones)


def lemma_3_1(a: ConvParams, b: ConvParams) -> ConvParams:
    """Lemma 3.1: a 1x1 ``a`` merged into the following conv ``b``. ``b`` zero-pads ``a``'s output, so at the
    borders it does not see ``a``'s bias: that bias enters through the (zero-padded) ones channel with the full
    kernel ``sum_j b_ij * K_b[i, j]``, never through ``b``'s bias."""
    if a.kernel_size != 1:
        raise ValueError('lemma_3_1: the first conv must be 1x1')
    m = a.weight[:, :, 0, 0]
    a_bias = a.bias + (0 if a.ones is None else a.ones[:, 0, 0])
    ones = torch.einsum('ojkl,j->okl', b.weight, a_bias) + _ones_or_zeros(b, b.kernel_size)
    return ConvParams(torch.einsum('ojkl,ji->oikl', b.weight, m), b.bias.clone(), ones)


def bias_to_ones(p: ConvParams) -> ConvParams:
    """Eq. 4 (``bias_rm``): the bias moved onto the centre tap of the ones-channel kernel; the bias becomes 0."""
    ones = _ones_or_zeros(p, p.kernel_size).clone()
    ones[:, p.kernel_size // 2, p.kernel_size // 2] += p.bias
    return ConvParams(p.weight, torch.zeros_like(p.bias), ones)


def ones_is_central(p: ConvParams) -> bool:
    """Whether the ones-channel kernel touches only the centre tap (then it is a plain bias, borders included)."""
    if p.ones is None:
        return True
    c = p.kernel_size // 2
    rest = p.ones.clone()
    rest[:, c, c] = 0
    return bool(rest.abs().max() == 0)


def fold_ones(p: ConvParams, ones_padded_with_ones: bool = False) -> ConvParams:
    """Fold the ones channel into the bias where that is exact: always for a centre-only kernel; for any kernel
    when the constant channel is padded with ones rather than zeros (the rep blocks' "pad with the bias" training
    form: ECB, RRRB, Conv3XC pad before the 1x1 so its bias reaches the border). Otherwise raises."""
    if p.ones is None:
        return p
    if ones_padded_with_ones:
        return ConvParams(p.weight, p.bias + p.ones.sum(dim=(1, 2)))
    if not ones_is_central(p):
        raise NotConvertibleError('fold_ones: the ones channel reaches zero padding through non-centre taps')
    c = p.kernel_size // 2
    return ConvParams(p.weight, p.bias + p.ones[:, c, c])


def read_offsets(p: ConvParams, offsets: Tensor) -> ConvParams:
    """``p`` reading inputs stored as ``x + offsets`` (per channel, e.g. the +C that carries a skip through a
    ReLU, Prop. 3.6): the correction ``-sum_j offsets_j K[:, j] * pad0(1)`` goes through the ones channel, so it is
    exact at the borders too (and folds into the bias when ``p`` reads the offset channels at its centre only)."""
    if not bool(offsets.any()):
        return p
    ones = _ones_or_zeros(p, p.kernel_size) - torch.einsum('ojkl,j->okl', p.weight, offsets)
    return _with_ones(p.weight, p.bias, ones)


def apply(p: ConvParams, x: Tensor) -> Tensor:
    """Reference forward: the ones channel concatenated and zero-padded like the input (one_pad, Eq. 3)."""
    k = p.kernel_size
    weight, pad = p.weight.to(x.dtype), k // 2
    if p.ones is not None:
        x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        weight = torch.cat([weight, p.ones.to(x.dtype)[:, None]], dim=1)
    return F.conv2d(x, weight, p.bias.to(x.dtype), padding=pad)


def to_conv(p: ConvParams, dtype: torch.dtype = torch.float32) -> nn.Conv2d:
    """An ``nn.Conv2d`` holding ``p`` (whose ones channel must be folded or absent)."""
    if p.ones is not None:
        raise ValueError('to_conv: fold or route the ones channel first')
    conv = nn.Conv2d(p.in_channels, p.out_channels, p.kernel_size, padding=p.kernel_size // 2, dtype=dtype)
    with torch.no_grad():
        conv.weight.copy_(p.weight)
        conv.bias.copy_(p.bias)
    return conv


__all__ = ['NotConvertibleError', 'ConvParams', 'from_conv', 'pad_kernel', 'concat_outputs', 'block_diagonal',
           'sum_outputs', 'pointwise', 'identity', 'add_as_conv', 'then_pointwise', 'lemma_3_1', 'bias_to_ones',
           'ones_is_central', 'fold_ones', 'read_offsets', 'apply', 'to_conv']
