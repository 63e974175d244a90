"""MMagic's EDSRNet as a convertible network (its blocks and PixelShufflePack are read by torch.fx)."""
from __future__ import annotations

from mmagic.models.editors.edsr.edsr_net import EDSRNet

from memsr_plugin.conversion.graph import Affine, Conv, Network, describe, register_describer, residual


@register_describer(EDSRNet)
def describe_edsrnet(net: EDSRNet, name: str = '') -> Network:
    """``(x - mean) / std`` -> conv_first -> [body, conv_after_body] + skip -> upsample -> conv_last ->
    ``* std + mean``."""
    mean, std = net.mean.detach().double().flatten(), net.std.detach().double().flatten()
    body = describe(net.body, 'body') + describe(net.conv_after_body, 'conv_after_body')
    nodes = [Affine(1.0 / std, -mean / std, 'normalise'), Conv(net.conv_first, 'conv_first'),
             residual(body, 1.0, name), *describe(net.upsample, 'upsample'), Conv(net.conv_last, 'conv_last'),
             Affine(std.clone(), mean.clone(), 'denormalise')]
    return Network(nodes, net.in_channels)
