"""Re-parameterisable blocks built on the same exact merges: trained multi-branch, deployed as one 3x3 conv.

* :class:`ECB` (ECBSR, Zhang et al. 2021): 3x3, 1x1-3x3, 1x1-Sobel-x, 1x1-Sobel-y and 1x1-Laplacian branches, plus
  the identity when the widths match;
* :class:`RRRB` (FMEN, Du et al. 2022): 1x1 expand -> 3x3 with a residual -> 1x1 reduce, plus a residual;
* :class:`Conv3XC` (SPAN, Wan et al. 2024): 1x1 -> 3x3 -> 1x1, plus a 1x1 skip.

Each 1x1 -> 3x3 pair is trained in the "pad first" form: the input is zero-padded *before* the 1x1, so the 3x3
sees the 1x1's bias at the border, exactly the constant a merged conv's bias adds there. Lemma 3.1's ones-channel
kernel then folds into the bias (``fold_ones(..., ones_padded_with_ones=True)``), which makes the merge exact at the
borders. ``merged()`` returns the float64 :class:`ConvParams`, ``to_plain()`` one ``nn.Conv2d``.

:class:`RepSR` stacks such blocks with ReLUs and a pixel shuffle; ``to_plain()`` returns its deployed
:class:`PlainConvSR` (what a profiler should measure).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from effsr_core.registry import register
from memsr_plugin.archs import PlainConvSR
from memsr_plugin.conversion import merges as m
from memsr_plugin.conversion.merges import ConvParams

_EDGE_MASKS = {
    'sobel_x': [[1., 0., -1.], [2., 0., -2.], [1., 0., -1.]],
    'sobel_y': [[1., 2., 1.], [0., 0., 0.], [-1., -2., -1.]],
    'laplacian': [[0., 1., 0.], [1., -4., 1.], [0., 1., 0.]],
}


def _params(weight: Tensor, bias: Tensor) -> ConvParams:
    return ConvParams(weight.detach().double().clone(), bias.detach().double().clone())


def _pad_then(x: Tensor, first: nn.Conv2d, second: Tensor, second_bias: Tensor, groups: int = 1) -> Tensor:
    """Zero-pad ``x``, apply the 1x1 ``first`` (its bias reaches the border), then the valid 3x3 ``second``."""
    return F.conv2d(first(F.pad(x, (1, 1, 1, 1))), second, second_bias, groups=groups)


def _pad_then_merged(first: nn.Conv2d, second: ConvParams) -> ConvParams:
    """The single 'same' conv equal to :func:`_pad_then` (Lemma 3.1 with the ones channel padded with ones)."""
    return m.fold_ones(m.lemma_3_1(_params(first.weight, first.bias), second), ones_padded_with_ones=True)


class _Reparam(nn.Module):
    def merged(self) -> ConvParams:
        raise NotImplementedError

    def to_plain(self) -> nn.Conv2d:
        """One ``nn.Conv2d`` computing this block (in its parameters' dtype)."""
        return m.to_conv(self.merged(), dtype=next(self.parameters()).dtype)


class _EdgeBranch(nn.Module):
    """1x1 conv, then a fixed edge mask scaled per channel (a depthwise 3x3 with learnable scale and bias)."""

    def __init__(self, in_channels: int, out_channels: int, mask: str):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)
        self.scale = nn.Parameter(torch.randn(out_channels, 1, 1, 1) * 1e-3)
        self.bias = nn.Parameter(torch.randn(out_channels) * 1e-3)
        self.register_buffer('mask', torch.tensor(_EDGE_MASKS[mask]).expand(out_channels, 1, 3, 3).clone())

    def forward(self, x: Tensor) -> Tensor:
        return _pad_then(x, self.conv, self.scale * self.mask, self.bias, groups=self.mask.shape[0])

    def merged(self) -> ConvParams:
        depthwise = (self.scale * self.mask).detach().double()[:, 0]
        dense = torch.diag_embed(depthwise.permute(1, 2, 0)).permute(2, 3, 0, 1)  # (out, out, 3, 3), diagonal
        return _pad_then_merged(self.conv, _params(dense, self.bias))


class ECB(_Reparam):
    """Edge-oriented convolution block (ECBSR). Args: channels in / out, ``depth_multiplier`` for the 1x1-3x3
    branch's width; the identity branch is added when ``in_channels == out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, depth_multiplier: float = 2.0):
        super().__init__()
        mid = max(1, int(out_channels * depth_multiplier))
        self.conv3x3 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.expand = nn.Conv2d(in_channels, mid, 1)
        self.conv1x3 = nn.Conv2d(mid, out_channels, 3)
        self.edges = nn.ModuleList(_EdgeBranch(in_channels, out_channels, mask) for mask in _EDGE_MASKS)
        self.with_identity = in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv3x3(x) + _pad_then(x, self.expand, self.conv1x3.weight, self.conv1x3.bias)
        out = out + sum(edge(x) for edge in self.edges)
        return out + x if self.with_identity else out

    def merged(self) -> ConvParams:
        total = m.sum_outputs(_params(self.conv3x3.weight, self.conv3x3.bias),
                              _pad_then_merged(self.expand, _params(self.conv1x3.weight, self.conv1x3.bias)))
        for edge in self.edges:
            total = m.sum_outputs(total, edge.merged())
        return m.sum_outputs(total, m.identity(self.conv3x3.in_channels)) if self.with_identity else total


class RRRB(_Reparam):
    """Re-parameterised residual-in-residual block (FMEN): ``reduce(conv(expand(x)) + expand(x)) + x`` with the
    expand output padded by its bias (here: the input padded before the 1x1)."""

    def __init__(self, channels: int, ratio: int = 2):
        super().__init__()
        self.expand = nn.Conv2d(channels, channels * ratio, 1)
        self.conv = nn.Conv2d(channels * ratio, channels * ratio, 3)
        self.reduce = nn.Conv2d(channels * ratio, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        expanded = self.expand(F.pad(x, (1, 1, 1, 1)))
        inner = F.conv2d(expanded, self.conv.weight, self.conv.bias) + expanded[:, :, 1:-1, 1:-1]
        return self.reduce(inner) + x

    def merged(self) -> ConvParams:
        conv = m.sum_outputs(_params(self.conv.weight, self.conv.bias), m.identity(self.conv.in_channels))
        inner = _pad_then_merged(self.expand, conv)
        out = m.then_pointwise(inner, _params(self.reduce.weight, self.reduce.bias))
        return m.sum_outputs(out, m.identity(self.expand.in_channels))


class Conv3XC(_Reparam):
    """SPAN's Conv3XC: ``1x1 -> 3x3 -> 1x1`` on the zero-padded input, plus a 1x1 skip; ``gain`` widens the
    middle."""

    def __init__(self, in_channels: int, out_channels: int, gain: int = 2):
        super().__init__()
        self.first = nn.Conv2d(in_channels, in_channels * gain, 1)
        self.middle = nn.Conv2d(in_channels * gain, out_channels * gain, 3)
        self.last = nn.Conv2d(out_channels * gain, out_channels, 1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.last(_pad_then(x, self.first, self.middle.weight, self.middle.bias)) + self.skip(x)

    def merged(self) -> ConvParams:
        main = _pad_then_merged(self.first, _params(self.middle.weight, self.middle.bias))
        main = m.then_pointwise(main, _params(self.last.weight, self.last.bias))
        return m.sum_outputs(main, _params(self.skip.weight, self.skip.bias))


BLOCKS = ('ecb', 'rrrb', 'conv3xc')


@register('arch', example={'kwargs': {'num_feat': 4, 'num_block': 1, 'upscale': 2}, 'input': (1, 3, 6, 6)})
class RepSR(nn.Module):
    """A plain SR network trained with re-parameterisable blocks (ECBSR-style): head block -> ReLU -> ``num_block``
    x (block -> ReLU) -> tail block -> pixel shuffle. The head and tail are ECBs; ``block`` picks the body's.
    ``to_plain()`` returns the deployed :class:`PlainConvSR` (one 3x3 conv per block)."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, num_feat: int = 16, num_block: int = 4,
                 upscale: int = 4, block: str = 'ecb', gain: int = 2):
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f'RepSR: unknown block {block!r}; allowed: {BLOCKS}')
        self.in_channels, self.upscale = in_channels, upscale
        body = {'ecb': lambda: ECB(num_feat, num_feat, gain), 'rrrb': lambda: RRRB(num_feat, gain),
                'conv3xc': lambda: Conv3XC(num_feat, num_feat, gain)}[block]
        self.blocks = nn.ModuleList([ECB(in_channels, num_feat, gain), *(body() for _ in range(num_block)),
                                     ECB(num_feat, out_channels * upscale * upscale, gain)])
        self.shuffle = nn.PixelShuffle(upscale)

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks[:-1]:
            x = F.relu(block(x))
        return self.shuffle(self.blocks[-1](x))

    def to_plain(self) -> PlainConvSR:
        """The deployed plain network, same dtype and device, numerically equal to this one."""
        convs = [block.merged() for block in self.blocks]
        n = len(convs)
        plain = PlainConvSR(self.in_channels, [c.out_channels for c in convs], 3, ['relu'] * (n - 1) + ['identity'],
                            [1] * (n - 1) + [self.upscale])
        reference = next(self.parameters())
        plain = plain.to(device=reference.device, dtype=reference.dtype)
        with torch.no_grad():
            for conv, params in zip(plain.convs(), convs):
                conv.weight.copy_(params.weight)
                conv.bias.copy_(params.bias)
        return plain
