"""PlainConvSR: the exported form of a converted network, a single chain of ``nn.Conv2d`` / activation /
``nn.PixelShuffle`` with per-layer widths, kernel sizes and activations, and no skip connection (so only one
feature map is alive at a time, which is MemSR's memory argument).

Two explicit operations remain, both optional and documented where a conversion needs them:
``input_ones`` concatenates one all-ones channel to the input image (once, never per layer) for a first conv whose
constant channel reaches zero padding (an input normalisation merged by Lemma 3.1); ``base_upscale`` adds the
toolbox's bilinear upsampling of the input to the output (MSRResNet's global skip, not a convolution).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from effsr_core.registry import register

ACTIVATIONS = ('relu', 'lrelu', 'identity')


def body_length(shuffles: Sequence[int]) -> int:
    """How many layers form the body: those before the first pixel shuffle (the upsampler), or all but the last
    layer when nothing is shuffled."""
    return next((i for i, shuffle in enumerate(shuffles) if shuffle > 1), len(shuffles) - 1)


def _per_layer(value, n: int, what: str) -> list:
    values = [value] * n if isinstance(value, (int, float, str)) else list(value)
    if len(values) != n:
        raise ValueError(f'PlainConvSR: {what} has {len(values)} entries for {n} layers')
    return values


@register('arch', example={'kwargs': {'in_channels': 3, 'widths': [8, 12], 'acts': ['relu', 'identity'],
                                      'shuffles': [1, 2]}, 'input': (1, 3, 6, 6)})
class PlainConvSR(nn.Module):
    """A plain SR network: layer ``i`` is ``Conv2d(widths[i-1], widths[i], kernel_sizes[i])``, then
    ``acts[i]`` ('relu', 'lrelu' with ``negative_slope``, or 'identity'), then ``PixelShuffle(shuffles[i])`` when
    it is above 1.

    Args:
        in_channels: Input image channels.
        widths: Output channels of each conv.
        kernel_sizes: Odd kernel size per layer (or one for all).
        acts: Activation per layer (or one for all).
        shuffles: Pixel-shuffle factor after each layer (1: none).
        negative_slope: Slope of the 'lrelu' layers.
        input_ones: Concatenate an all-ones channel to the input (the first conv then has in_channels + 1 inputs).
        base_upscale: Add ``F.interpolate(x, base_upscale, bilinear)`` of the input to the output (0: none).
    """

    def __init__(self, in_channels: int, widths: Sequence[int], kernel_sizes: Sequence[int] | int = 3,
                 acts: Sequence[str] | str = 'relu', shuffles: Sequence[int] | int = 1, negative_slope: float = 0.1,
                 input_ones: bool = False, base_upscale: int = 0):
        super().__init__()
        n = len(widths)
        kernel_sizes, acts = _per_layer(kernel_sizes, n, 'kernel_sizes'), _per_layer(acts, n, 'acts')
        shuffles = _per_layer(shuffles, n, 'shuffles')
        if unknown := sorted(set(acts) - set(ACTIVATIONS)):
            raise ValueError(f'PlainConvSR: unknown activation(s) {unknown}; allowed: {ACTIVATIONS}')
        self.in_channels, self.negative_slope = int(in_channels), float(negative_slope)
        self.input_ones, self.base_upscale = bool(input_ones), int(base_upscale)
        self.widths, self.kernel_sizes, self.acts, self.shuffles = list(widths), kernel_sizes, acts, shuffles
        #: Set by the conversion: per layer, the constant each output channel carries on top of the original
        #: network's value (the ``C`` of a skip carried through a ReLU, 1 on a ones channel); None: not converted.
        self.feature_offsets: list[Tensor] | None = None
        layers: list[nn.Module] = []
        self._starts: list[int] = []  # where each layer (conv, activation, shuffle) begins in ``body``
        channels = in_channels + int(self.input_ones)
        for width, k, act, shuffle in zip(widths, kernel_sizes, acts, shuffles):
            if k % 2 == 0:
                raise ValueError(f'PlainConvSR: kernel size {k} is even')
            self._starts.append(len(layers))
            layers.append(nn.Conv2d(channels, width, k, padding=k // 2))
            if act == 'relu':
                layers.append(nn.ReLU(inplace=True))
            elif act == 'lrelu':
                layers.append(nn.LeakyReLU(negative_slope, inplace=True))
            if shuffle > 1:
                if width % (shuffle * shuffle):
                    raise ValueError(f'PlainConvSR: width {width} is not divisible by {shuffle}^2')
                layers.append(nn.PixelShuffle(shuffle))
            channels = width // (shuffle * shuffle)
        self.body = nn.Sequential(*layers)

    def config(self) -> dict:
        """The constructor's arguments: ``PlainConvSR(**net.config())`` rebuilds the architecture, and with
        ``type: PlainConvSR`` it is a BasicSR ``network_g`` / an MMagic ``generator``."""
        return {'in_channels': self.in_channels, 'widths': list(self.widths), 'kernel_sizes': list(self.kernel_sizes),
                'acts': list(self.acts), 'shuffles': list(self.shuffles), 'negative_slope': self.negative_slope,
                'input_ones': self.input_ones, 'base_upscale': self.base_upscale}

    def convs(self) -> list[nn.Conv2d]:
        return [m for m in self.body if isinstance(m, nn.Conv2d)]

    def prepare_input(self, x: Tensor) -> Tensor:
        """What the first conv reads: the image, with the all-ones channel when ``input_ones``."""
        return torch.cat([x, torch.ones_like(x[:, :1])], dim=1) if self.input_ones else x

    def run_layer(self, index: int, x: Tensor) -> Tensor:
        """Layer ``index`` (its conv, activation and pixel shuffle) on the previous layer's output."""
        stop = self._starts[index + 1] if index + 1 < len(self._starts) else len(self.body)
        for module in self.body[self._starts[index]:stop]:
            x = module(x)
        return x

    def forward(self, x: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        """The SR image; with ``return_features`` also the output of every layer (conv, activation and pixel
        shuffle), in order: what MemSR's initialisation and distillation match layer by layer."""
        out, features = self.prepare_input(x), []
        if return_features:
            for index in range(len(self._starts)):
                out = self.run_layer(index, out)
                features.append(out)
        else:  # each layer's output is freed by the next one: one feature map alive at a time
            out = self.body(out)
        if self.base_upscale:
            out = out + F.interpolate(x, scale_factor=self.base_upscale, mode='bilinear', align_corners=False)
        return (out, features) if return_features else out
