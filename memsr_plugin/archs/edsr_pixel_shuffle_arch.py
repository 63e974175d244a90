"""The paper's teacher (Sec. 4.1, Teacher-S / Teacher-M): EDSR's backbone with the up-sampling part "directly
using pixel-shuffle" (one conv to ``out * s^2`` channels, then ``PixelShuffle(s)``) instead of EDSR's conv-shuffle
stages at the feature width. Framework-free; registered for BasicSR and MMagic, and convertible (its describer is in
``conversion.describers``).

Why it matters for memory: EDSR's x4 upsampler holds 256-channel maps at twice the LR size, the largest tensors of
the whole forward, and a student that copies it (Alg. 1 copies the teacher's upsampler) keeps that peak. With the
direct shuffle the widest map is the body's, which is what the plain student makes small.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from effsr_core.registry import register

#: DIV2K's RGB mean, as EDSR normalises its input.
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class ResidualBlock(nn.Module):
    """``x + res_scale * conv(relu(conv(x)))``."""

    def __init__(self, num_feat: int, res_scale: float):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.res_scale = res_scale

    def forward(self, x: Tensor) -> Tensor:
        return x + self.res_scale * self.conv2(F.relu(self.conv1(x)))


@register('arch', example={'kwargs': {'num_feat': 4, 'num_block': 1, 'upscale': 2}, 'input': (1, 3, 6, 6)})
class EDSRPixelShuffle(nn.Module):
    """EDSR (mean shift, conv_first, residual blocks, conv_after_body, global skip) with a one-conv pixel-shuffle
    upsampler: ``conv_up`` to ``num_out_ch * upscale^2`` channels, ``PixelShuffle(upscale)``, de-normalisation.

    Args:
        num_in_ch, num_out_ch: Image channels.
        num_feat: Feature width (Teacher-M: 64).
        num_block: Residual blocks (Teacher-M: 16).
        upscale: Any integer factor >= 2.
        res_scale: Scale of each block's residual.
        img_range: Images are in [0, img_range] inside the network (EDSR: 255).
        rgb_mean: Subtracted before, added after (per channel, in [0, 1]).
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 16,
                 upscale: int = 4, res_scale: float = 1.0, img_range: float = 255.0,
                 rgb_mean: Sequence[float] = DIV2K_RGB_MEAN):
        super().__init__()
        if int(upscale) != upscale or upscale < 2:
            raise ValueError(f'EDSRPixelShuffle: upscale must be an integer >= 2, got {upscale}')
        if len(rgb_mean) != num_in_ch or num_in_ch != num_out_ch:
            raise ValueError(f'EDSRPixelShuffle: rgb_mean has {len(rgb_mean)} entries for {num_in_ch} input and '
                             f'{num_out_ch} output channels (they must be equal)')
        self.upscale, self.img_range = int(upscale), float(img_range)
        self.register_buffer('mean', torch.tensor(rgb_mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, padding=1)
        self.body = nn.Sequential(*(ResidualBlock(num_feat, res_scale) for _ in range(num_block)))
        self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.conv_up = nn.Conv2d(num_feat, num_out_ch * self.upscale ** 2, 3, padding=1)
        self.shuffle = nn.PixelShuffle(self.upscale)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv_first((x - self.mean) * self.img_range)
        x = x + self.conv_after_body(self.body(x))
        return self.shuffle(self.conv_up(x)) / self.img_range + self.mean
