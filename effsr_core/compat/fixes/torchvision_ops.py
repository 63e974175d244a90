"""``torchvision::deform_conv2d`` in plain PyTorch, for a torchvision whose C++ ops do not load (``effsr_core.compat``).

torchvision 0.28.0 next to the CPU torch 2.13 is a CUDA build: its ``_C`` library does not load, so no
``torchvision::`` operator exists and ``torchvision.ops.deform_conv2d`` raises "Couldn't load custom C++ ops".
BasicSR's ``DCNv2Pack`` (EDVR, IconVSR) calls that function. ``register_deform_conv2d`` defines the operator with
torchvision's schema and a ``CompositeImplicitAutograd`` kernel written with differentiable torch ops (so autograd
gives the backward, and meta / fake tensors work), and lets ``torchvision.ops.deform_conv`` call it. Where
torchvision's own ops load, it does nothing.

Semantics (those of torchvision's kernel): output pixel ``(oy, ox)``, kernel tap ``(i, j)`` of offset group ``g``
samples the input at ``y = oy * stride_h - pad_h + i * dilation_h + dy``, ``x = ox * stride_w - pad_w + j *
dilation_w + dx``, where ``(dy, dx)`` are offset channels ``2 * (g * kh * kw + i * kw + j)`` and ``... + 1``;
sampling is bilinear with zeros outside the input; the sample is multiplied by mask channel ``g * kh * kw + i * kw
+ j`` when ``use_mask``; input channels are split evenly into the offset groups, and into ``groups`` for the
weights as in ``conv2d``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from effsr_core.compat.fixes.marks import _is_patched, _mark

SCHEMA = ('deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, SymInt stride_h, '
          'SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, SymInt dilation_w, SymInt groups, '
          'SymInt offset_groups, bool use_mask) -> Tensor')

_library: torch.library.Library | None = None  # kept alive: dropping it would unregister the operator


def _conv_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def _check_shapes(input, weight, offset, mask, bias, strides, pads, dilations, groups, offset_groups, use_mask):
    """Refuse inconsistent arguments, naming the sizes involved (torchvision's kernel checks the same)."""
    batch, channels, height, width = input.shape
    out_channels, group_channels, kh, kw = weight.shape
    taps = kh * kw
    out_h, out_w = (_conv_output_size(s, k, st, p, d)
                    for s, k, st, p, d in zip((height, width), (kh, kw), strides, pads, dilations))
    if min(*strides, *dilations) < 1 or min(pads) < 0 or groups < 1 or offset_groups < 1:
        problem = (f'stride {strides} and dilation {dilations} must be >= 1, padding {pads} >= 0, '
                   f'groups {groups} and offset groups {offset_groups} >= 1')
    elif channels != groups * group_channels or out_channels % groups:
        problem = f'input channels {channels} and weight {tuple(weight.shape)} do not fit {groups} groups'
    elif channels % offset_groups:
        problem = f'input channels {channels} cannot be split into {offset_groups} offset groups'
    elif tuple(offset.shape) != (batch, 2 * offset_groups * taps, out_h, out_w):
        problem = f'offset {tuple(offset.shape)} should be {(batch, 2 * offset_groups * taps, out_h, out_w)}'
    elif use_mask and tuple(mask.shape) != (batch, offset_groups * taps, out_h, out_w):
        problem = f'mask {tuple(mask.shape)} should be {(batch, offset_groups * taps, out_h, out_w)}'
    elif bias.numel() != out_channels:
        problem = f'bias has {bias.numel()} values for {out_channels} output channels'
    else:
        return
    raise RuntimeError(f'deform_conv2d: {problem}')


def deform_conv2d(input: torch.Tensor, weight: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor,
                  bias: torch.Tensor, stride_h: int, stride_w: int, pad_h: int, pad_w: int, dilation_h: int,
                  dilation_w: int, groups: int, offset_groups: int, use_mask: bool) -> torch.Tensor:
    """Modulated deformable convolution with the argument order of ``torch.ops.torchvision.deform_conv2d``.

    Returns:
        Tensor (batch, out_channels, out_h, out_w), out_h / out_w those of ``conv2d`` with the same settings.
    """
    _check_shapes(input, weight, offset, mask, bias, (stride_h, stride_w), (pad_h, pad_w),
                  (dilation_h, dilation_w), groups, offset_groups, use_mask)
    batch, channels, height, width = input.shape
    out_channels, _, kh, kw = weight.shape
    taps = kh * kw
    out_h, out_w = offset.shape[-2:]
    options = dict(dtype=input.dtype, device=input.device)
    # Sampling positions in input pixels, (batch, offset group, tap, out_h, out_w).
    tap_y = (torch.arange(kh, **options) * dilation_h).repeat_interleave(kw).view(1, 1, taps, 1, 1)
    tap_x = (torch.arange(kw, **options) * dilation_w).repeat(kh).view(1, 1, taps, 1, 1)
    grid_y = (torch.arange(out_h, **options) * stride_h - pad_h).view(1, 1, 1, out_h, 1)
    grid_x = (torch.arange(out_w, **options) * stride_w - pad_w).view(1, 1, 1, 1, out_w)
    deltas = offset.reshape(batch, offset_groups, taps, 2, out_h, out_w)
    y = grid_y + tap_y + deltas[:, :, :, 0]
    x = grid_x + tap_x + deltas[:, :, :, 1]
    # grid_sample (align_corners=False) reads pixel p at (2p + 1) / size - 1; zeros padding = zeros outside.
    grid = torch.stack(((2 * x + 1) / width - 1, (2 * y + 1) / height - 1), dim=-1)
    samples = F.grid_sample(input.reshape(batch * offset_groups, channels // offset_groups, height, width),
                            grid.reshape(batch * offset_groups, taps * out_h, out_w, 2),
                            mode='bilinear', padding_mode='zeros', align_corners=False)
    samples = samples.reshape(batch, offset_groups, channels // offset_groups, taps, out_h, out_w)
    if use_mask:
        samples = samples * mask.reshape(batch, offset_groups, 1, taps, out_h, out_w)
    # (batch, groups, channels per group * taps, pixels) against (groups, out per group, channels per group * taps).
    columns = samples.reshape(batch, groups, channels // groups * taps, out_h * out_w)
    kernels = weight.reshape(groups, out_channels // groups, channels // groups * taps)
    out = torch.einsum('bgkp,gok->bgop', columns, kernels).reshape(batch, out_channels, out_h, out_w)
    return out + bias.view(1, out_channels, 1, 1)


def _operator_exists() -> bool:
    return hasattr(torch.ops.torchvision, 'deform_conv2d')


def register_deform_conv2d(module) -> bool:
    """Define ``torchvision::deform_conv2d`` and let ``module`` (``torchvision.ops.deform_conv``) call it, only where
    torchvision's C++ ops did not load. Idempotent; True when something changed."""
    import torchvision.extension

    if torchvision.extension._has_ops():
        return False
    global _library
    changed = False
    if not _operator_exists():
        _library = torch.library.Library('torchvision', 'FRAGMENT')
        _library.define(SCHEMA)
        _library.impl('deform_conv2d', deform_conv2d, 'CompositeImplicitAutograd')
        changed = True
    if not _is_patched(module._assert_has_ops):
        module._assert_has_ops = _assert_deform_conv2d
        changed = True
    return changed


@_mark
def _assert_deform_conv2d() -> None:
    """``torchvision.ops.deform_conv``'s check, met by this operator alone (torchvision's other ops stay missing)."""
    if not _operator_exists():
        raise RuntimeError('torchvision::deform_conv2d is not registered (effsr_core.compat fix undone?)')
