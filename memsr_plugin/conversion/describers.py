"""How the conversion reads MemSR's own networks (``archs``) as branches: the describers of the networks that
``describe`` cannot trace alone. The toolbox networks' describers are in the adapters (``basicsr/conversion.py``,
``mmagic/conversion.py``)."""
from __future__ import annotations

import torch

from memsr_plugin.archs import EDSRPixelShuffle
from memsr_plugin.conversion.graph import Affine, Conv, Network, Shuffle, describe, register_describer, residual


@register_describer(EDSRPixelShuffle)
def describe_edsr_pixel_shuffle(net: EDSRPixelShuffle, name: str = '') -> Network:
    """Normalisation -> conv_first -> [body, conv_after_body] + skip -> conv_up -> shuffle -> de-normalisation (on
    the ``upscale^2`` sub-pixel channels of each colour before the shuffle: the same per-channel affine map)."""
    mean = net.mean.detach().double().flatten()
    scale = torch.full_like(mean, net.img_range)
    sub_pixels = net.upscale ** 2
    body = describe(net.body, 'body') + describe(net.conv_after_body, 'conv_after_body')
    nodes = [Affine(scale, -mean * scale, 'mean_shift'), Conv(net.conv_first, 'conv_first'),
             residual(body, 1.0, name), Conv(net.conv_up, 'conv_up'),
             Affine((1.0 / scale).repeat_interleave(sub_pixels), mean.repeat_interleave(sub_pixels), 'mean_unshift'),
             Shuffle(net.upscale, 'shuffle')]
    return Network(nodes, net.conv_first.in_channels)
