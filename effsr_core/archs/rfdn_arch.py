"""RFDN: Residual Feature Distillation Network (AIM 2020 efficient SR winner, NTIRE 2022/2023 ESR baseline).

The module layout and parameter names follow the official implementation, so its released checkpoint loads with
``load_state_dict(strict=True)``. Activations are modules (not functional calls) as in the original, which is what
the challenge's hook-based FLOP counter expects.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from effsr_core.registry import register

LEAKY_SLOPE = 0.05


def _conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int | None = None
          ) -> nn.Conv2d:
    """A biased conv; 'same' padding unless ``padding`` is given."""
    same_padding = (kernel_size - 1) // 2
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, same_padding if padding is None else padding)


class ESA(nn.Module):
    """Enhanced spatial attention: a cheap large-receptive-field mask that gates the block output.

    Args:
        num_feat: Channels of the gated features.
    """

    def __init__(self, num_feat: int):
        super().__init__()
        reduced = num_feat // 4
        self.conv1 = _conv(num_feat, reduced, 1)
        self.conv_f = _conv(reduced, reduced, 1)
        self.conv_max = _conv(reduced, reduced, 3)
        self.conv2 = _conv(reduced, reduced, 3, stride=2, padding=0)
        self.conv3 = _conv(reduced, reduced, 3)
        self.conv3_ = _conv(reduced, reduced, 3)
        self.conv4 = _conv(reduced, num_feat, 1)
        self.sigmoid = nn.Sigmoid()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduced = self.conv1(x)
        pooled = F.max_pool2d(self.conv2(reduced), kernel_size=7, stride=3)
        context = self.relu(self.conv_max(pooled))
        context = self.relu(self.conv3(context))
        context = self.conv3_(context)
        context = F.interpolate(context, size=x.shape[-2:], mode='bilinear', align_corners=False)
        mask = self.sigmoid(self.conv4(context + self.conv_f(reduced)))
        return x * mask


class RFDB(nn.Module):
    """Residual feature distillation block: three distill/refine steps, a last refine, fusion and ESA.

    Args:
        num_feat: Channels in and out; distilled branches have ``num_feat // 2``.
    """

    def __init__(self, num_feat: int):
        super().__init__()
        distilled = num_feat // 2
        self.c1_d = _conv(num_feat, distilled, 1)
        self.c1_r = _conv(num_feat, num_feat, 3)
        self.c2_d = _conv(num_feat, distilled, 1)
        self.c2_r = _conv(num_feat, num_feat, 3)
        self.c3_d = _conv(num_feat, distilled, 1)
        self.c3_r = _conv(num_feat, num_feat, 3)
        self.c4 = _conv(num_feat, distilled, 3)
        self.act = nn.LeakyReLU(LEAKY_SLOPE, inplace=True)
        self.c5 = _conv(distilled * 4, num_feat, 1)
        self.esa = ESA(num_feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distilled = []
        remaining = x
        for distill_conv, refine_conv in ((self.c1_d, self.c1_r), (self.c2_d, self.c2_r), (self.c3_d, self.c3_r)):
            distilled.append(self.act(distill_conv(remaining)))
            remaining = self.act(refine_conv(remaining) + remaining)
        distilled.append(self.act(self.c4(remaining)))
        return self.esa(self.c5(torch.cat(distilled, dim=1)))


@register('arch', example={'kwargs': {'num_feat': 8, 'num_blocks': 2}, 'input': (1, 3, 16, 16)})
class RFDN(nn.Module):
    """Residual Feature Distillation Network (Liu et al., AIM 2020), the NTIRE efficient-SR baseline.

    Args:
        in_channels: Channels of the LR input.
        out_channels: Channels of the SR output.
        num_feat: Feature channels (50 in the challenge baseline).
        num_blocks: Number of RFDB blocks, named ``B1``, ``B2``, ... as in the official checkpoint.
        upscale: Upscaling factor of the pixel-shuffle reconstruction.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, num_feat: int = 50, num_blocks: int = 4,
                 upscale: int = 4):
        super().__init__()
        self.fea_conv = _conv(in_channels, num_feat, 3)
        self.block_names = tuple(f'B{index}' for index in range(1, num_blocks + 1))
        for name in self.block_names:
            self.add_module(name, RFDB(num_feat))
        self.c = nn.Sequential(_conv(num_feat * num_blocks, num_feat, 1), nn.LeakyReLU(LEAKY_SLOPE, inplace=True))
        self.LR_conv = _conv(num_feat, num_feat, 3)
        self.upsampler = nn.Sequential(_conv(num_feat, out_channels * upscale ** 2, 3), nn.PixelShuffle(upscale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shallow = self.fea_conv(x)
        block_outputs = []
        features = shallow
        for name in self.block_names:
            features = getattr(self, name)(features)
            block_outputs.append(features)
        fused = self.c(torch.cat(block_outputs, dim=1))
        return self.upsampler(self.LR_conv(fused) + shallow)
