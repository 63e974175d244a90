"""BasicSR's EDSR and MSRResNet as convertible networks (their blocks are read by torch.fx)."""
from __future__ import annotations

import torch
from basicsr.archs.edsr_arch import EDSR
from basicsr.archs.srresnet_arch import MSRResNet

from memsr_plugin.conversion.graph import Act, Affine, Conv, Network, Shuffle, describe, register_describer, residual


@register_describer(EDSR)
def describe_edsr(net: EDSR, name: str = '') -> Network:
    """``(x - mean) * img_range`` -> conv_first -> [body, conv_after_body] + skip -> upsample -> conv_last ->
    ``/ img_range + mean``; both normalisations are per-channel affine maps (1x1 convs)."""
    mean = net.mean.detach().double().flatten()
    scale = torch.full_like(mean, float(net.img_range))
    body = describe(net.body, 'body') + describe(net.conv_after_body, 'conv_after_body')
    nodes = [Affine(scale, -mean * scale, 'mean_shift'), Conv(net.conv_first, 'conv_first'), residual(body, 1.0, name),
             *describe(net.upsample, 'upsample'), Conv(net.conv_last, 'conv_last'),
             Affine(1.0 / scale, mean.clone(), 'mean_unshift')]
    return Network(nodes, net.conv_first.in_channels)


@register_describer(MSRResNet)
def describe_msrresnet(net: MSRResNet, name: str = '') -> Network:
    """conv_first -> LeakyReLU -> ReLU blocks -> (upconv -> shuffle -> LeakyReLU) x1/2 -> conv_hr -> LeakyReLU ->
    conv_last; the bilinear upsampling of the input added at the end is not a convolution and stays as it is."""
    lrelu = Act('lrelu', float(net.lrelu.negative_slope), 'lrelu')
    nodes = [Conv(net.conv_first, 'conv_first'), lrelu, *describe(net.body, 'body')]
    factor = 2 if net.upscale == 4 else net.upscale
    for conv in ('upconv1', 'upconv2')[:2 if net.upscale == 4 else 1]:
        nodes += [Conv(getattr(net, conv), conv), Shuffle(factor, 'pixel_shuffle'), lrelu]
    nodes += [Conv(net.conv_hr, 'conv_hr'), lrelu, Conv(net.conv_last, 'conv_last')]
    return Network(nodes, net.conv_first.in_channels, base_upscale=net.upscale,
                   notes=['bilinear base kept as F.interpolate (not a convolution)'])
