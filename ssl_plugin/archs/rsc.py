"""Channel ops of Residual Sparsity Connection (RSC), SSL paper (Xia et al., CVPR 2023) Eqs. 2-4.

RSC lets a residual block's input channels and output filters be pruned independently, instead of forcing the skip
and residual connections to share pruned indices: a pruned block reads only its kept channels of the hidden state
and adds its output back at its kept channels, so the hidden state keeps its full width and the information the
block does not touch passes through unchanged. ``gather_channels`` is that read, ``add_to_channels`` that write, on
(b, c, h, w) tensors (NCHW or channels-last), faster than the generic indexing ops.
"""
from __future__ import annotations

import torch


def _channel_rows(index: torch.Tensor, batch: int, channels: int) -> torch.Tensor:
    """Rows of a contiguous (b, c, h, w) tensor viewed as (b*c, h*w) that hold channels ``index`` of every sample."""
    if batch == 1:
        return index
    return (index + channels * torch.arange(batch, device=index.device).view(-1, 1)).flatten()


def _is_channels_last(x: torch.Tensor) -> bool:
    return not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def gather_channels(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[:, index]`` as whole-plane row copies (NCHW) or per-pixel gathers (channels-last): both ~10x faster on
    CPU than ``index_select(1, ...)``, which walks the 4-D tensor element by element."""
    b, c, h, w = x.shape
    k = index.numel()
    if x.is_contiguous():
        return x.reshape(b * c, h * w).index_select(0, _channel_rows(index, b, c)).view(b, k, h, w)
    if _is_channels_last(x):
        return x.permute(0, 2, 3, 1).reshape(-1, c).index_select(1, index).view(b, h, w, k).permute(0, 3, 1, 2)
    return x.index_select(1, index)


def _index_add(target: torch.Tensor, dim: int, index: torch.Tensor, source: torch.Tensor,
               inplace: bool) -> torch.Tensor:
    return target.index_add_(dim, index, source) if inplace else target.index_add(dim, index, source)


def add_to_channels(x: torch.Tensor, index: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``x`` with ``values`` added to channels ``index`` (RSC Eq. 4).

    Out of place while autograd records (training stays correct); in place on ``x`` under ``torch.no_grad``
    (inference), which saves a full copy of the hidden state per residual block.
    """
    b, c, h, w = x.shape
    inplace = not torch.is_grad_enabled()
    if x.is_contiguous() and values.is_contiguous():
        rows = _channel_rows(index, b, c)
        return _index_add(x.view(b * c, h * w), 0, rows, values.reshape(-1, h * w), inplace).view(b, c, h, w)
    if _is_channels_last(x) and _is_channels_last(values):
        pixels = x.permute(0, 2, 3, 1).view(-1, c)
        source = values.permute(0, 2, 3, 1).reshape(-1, index.numel())
        return _index_add(pixels, 1, index, source, inplace).view(b, h, w, c).permute(0, 3, 1, 2)
    return _index_add(x, 1, index, values, inplace)
