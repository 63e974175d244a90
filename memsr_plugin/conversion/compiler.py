"""The composition (Sec. 3.2.3, Prop. 3.4-3.6): a described network to an equivalent :class:`PlainConvSR`.

Every step is one of the exact merges in :mod:`merges`:

* a branch point with branches of different lengths: each stage's parallel layers become one conv (Eq. 2 at the
  fork, Eq. 1 after it); a skip is carried by identity convs (Prop. 3.6), and through a ReLU / LeakyReLU stage with
  the constant ``C`` added to its bias (exact while the skipped values are above ``-C``);
* the add at the end of the branches is the 1x1 conv T (Prop. 3.6), which also removes the ``+C``;
* a 1x1 conv after a conv with no activation between composes into it (:func:`then_pointwise`, always exact); a
  1x1 conv followed by a conv merges forward by Lemma 3.1 (its bias then goes through the ones channel);
* a conv that reads ``+C``-offset channels with taps other than its centre corrects them through the ones channel.

Where the ones channel ends: every ones kernel that touches only the centre tap is a plain bias and is folded
(:func:`fold_ones`). That covers all carried skips (identity convs read their input at the centre only) and every
T, so EDSR / MSRResNet / EDSRNet convert with no ones channel in the body at all. A ones kernel with off-centre
taps cannot be folded: the previous layer then emits the ones channel itself as one more output channel with zero
weights and bias 1 (a conv's bias reaches every output pixel, and a ReLU keeps 1), which the next conv zero-pads
exactly like ``one_pad``; no concatenation at inference. Only when that happens at the first conv (an input
normalisation merged into it by Lemma 3.1, as EDSR's ``(x - mean) * img_range``) does ``PlainConvSR`` concatenate
one ones channel to the input image, once.

``relu_body=True`` exports the paper's form of the teacher (Fig. 3, Prop. 3.6): every body layer (each layer
before the first pixel shuffle; all but the last one when there is none) is conv + activation. A body layer that
had none gets a ReLU and the constant ``C`` on its bias, and the next conv reads its channels as ``x + C``
(:func:`merges.read_offsets`, exact at the borders: such a read reaches zero padding through off-centre taps, so
the layer also emits the ones channel, as in the paper's ``one_pad``). The export records, per layer, the constant
each output channel carries (``PlainConvSR.feature_offsets``: ``C`` on carried values, 1 on an emitted ones
channel) so that the original network's values can be read back from the plain features.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import nn

from memsr_plugin.archs import PlainConvSR, body_length
from memsr_plugin.conversion import merges as m
from memsr_plugin.conversion.graph import Act, Affine, Conv, Network, Node, Parallel, Shuffle, describe_network
from memsr_plugin.conversion.merges import ConvParams, NotConvertibleError

#: The paper's constant for carrying skips through ReLU (Prop. 3.6); exact while skipped values exceed -C.
DEFAULT_OFFSET = 1000.0


@dataclass
class Layer:
    """One plain layer: conv, then activation, then pixel shuffle (the activation commutes with the shuffle)."""
    params: ConvParams
    act: str = 'identity'
    slope: float = 0.0
    shuffle: int = 1
    names: list[str] = field(default_factory=list)
    offsets: torch.Tensor | None = None  # per conv output channel: the constant carried on top of the value

    @property
    def out_channels(self) -> int:
        return self.params.out_channels // (self.shuffle * self.shuffle)

    @property
    def is_open(self) -> bool:
        return self.act == 'identity' and self.shuffle == 1


def _channels(layers: list[Layer], in_channels: int) -> int:
    return layers[-1].out_channels if layers else in_channels


def _identity_layer(channels: int, **kwargs) -> Layer:
    return Layer(m.identity(channels), **kwargs)


def _append(layers: list[Layer], new: Layer) -> None:
    """Append ``new``, merging it into an open previous layer when one of the two is 1x1."""
    last = layers[-1] if layers else None
    if last is not None and last.is_open:
        if new.params.kernel_size == 1:
            layers[-1] = replace(new, params=m.then_pointwise(last.params, new.params), names=last.names + new.names)
            return
        if last.params.kernel_size == 1:
            layers[-1] = replace(new, params=m.lemma_3_1(last.params, new.params), names=last.names + new.names)
            return
    layers.append(new)


def _activate(layers: list[Layer], act: Act, in_channels: int) -> None:
    if layers and layers[-1].act == 'identity':
        layers[-1] = replace(layers[-1], act=act.kind, slope=act.slope)
    elif not (layers and layers[-1].act == act.kind == 'relu'):  # relu(relu(x)) = relu(x)
        layers.append(_identity_layer(_channels(layers, in_channels), act=act.kind, slope=act.slope, names=[act.name]))


def _shuffle(layers: list[Layer], shuffle: Shuffle, in_channels: int) -> None:
    if layers and layers[-1].shuffle == 1:
        layers[-1] = replace(layers[-1], shuffle=shuffle.factor)
    else:
        layers.append(_identity_layer(_channels(layers, in_channels), shuffle=shuffle.factor, names=[shuffle.name]))


def _parallel(node: Parallel, in_channels: int, offset: float) -> list[Layer]:
    """Branches of one fork as stages of wider layers, then the add T (Prop. 3.6)."""
    branches = [compile_nodes(branch, in_channels, offset) for branch in node.branches]
    widths = {_channels(b, in_channels) for b in branches}
    if len(widths) != 1:
        raise NotConvertibleError(f'{node.name}: branches with different channel counts {sorted(widths)} are added')
    width = widths.pop()
    if any(layer.shuffle != 1 for branch in branches for layer in branch):
        raise NotConvertibleError(f'{node.name}: a skip connection across a pixel shuffle')
    depth = max(len(b) for b in branches)
    for branch in branches:  # shorter branches (skips) carried by identity convs
        branch += [_identity_layer(width) for _ in range(depth - len(branch))]
    offsets = [torch.zeros(in_channels, dtype=torch.float64) for _ in branches]
    stages: list[Layer] = []
    for t in range(depth):
        acts = {(b[t].act, b[t].slope) for b in branches if b[t].act != 'identity'}
        if len(acts) > 1:
            raise NotConvertibleError(f'{node.name}: parallel layers {[b[t].names for b in branches]} have different '
                                      f'activations {sorted(acts)}')
        act, slope = acts.pop() if acts else ('identity', 0.0)
        parts, carried_offsets = [], []
        for j, branch in enumerate(branches):
            params = m.read_offsets(branch[t].params, offsets[j])
            carried = act != 'identity' and branch[t].act == 'identity'
            offsets[j] = torch.full((params.out_channels,), offset if carried else 0.0, dtype=torch.float64)
            parts.append(replace(params, bias=params.bias + offsets[j]))
            inner = branch[t].offsets  # a nested skip's own constant, already removed inside the branch
            carried_offsets.append(offsets[j] if inner is None else offsets[j] + inner)
        merge = m.concat_outputs if t == 0 else m.block_diagonal
        merged = parts[0]
        for part in parts[1:]:
            merged = merge(merged, part)
        stages.append(Layer(merged, act, slope, 1, [n for b in branches for n in b[t].names],
                            torch.cat(carried_offsets)))
    add = m.read_offsets(m.add_as_conv(width, tuple(node.scales)), torch.cat(offsets))
    _append(stages, Layer(m.fold_ones(add), names=[node.name]))
    return stages


def compile_nodes(nodes: list[Node], in_channels: int, offset: float = DEFAULT_OFFSET) -> list[Layer]:
    """Plain layers computing ``nodes`` on ``in_channels`` input channels (float64 parameters)."""
    layers: list[Layer] = []
    for node in nodes:
        channels = _channels(layers, in_channels)
        if isinstance(node, Conv):
            params = m.from_conv(node.module, node.name)
            if params.in_channels != channels:
                raise NotConvertibleError(f'{node.name}: expects {params.in_channels} channels, gets {channels}')
            _append(layers, Layer(params, names=[node.name]))
        elif isinstance(node, Act):
            _activate(layers, node, in_channels)
        elif isinstance(node, Shuffle):
            _shuffle(layers, node, in_channels)
        elif isinstance(node, Affine):
            scale = node.scale.double().expand(channels) if node.scale.numel() == 1 else node.scale.double()
            shift = node.shift.double().expand(channels) if node.shift.numel() == 1 else node.shift.double()
            _append(layers, Layer(m.pointwise(torch.diag(scale), shift.clone()), names=[node.name]))
        elif isinstance(node, Parallel):
            for stage in _parallel(node, channels, offset):
                _append(layers, stage)
        else:
            raise NotConvertibleError(f'{getattr(node, "name", node)}: unknown node {type(node).__name__}')
    return layers


def activate_body(layers: list[Layer], offset: float = DEFAULT_OFFSET) -> list[Layer]:
    """The paper's plain form (Prop. 3.6): every body layer without an activation gets a ReLU over its values
    plus ``offset``, which the next conv removes where it reads them (exact while those values exceed -offset)."""
    layers = list(layers)
    for i in range(body_length([layer.shuffle for layer in layers])):
        layer = layers[i]
        if layer.act != 'identity':
            continue
        shift = torch.full((layer.params.out_channels,), float(offset), dtype=layer.params.bias.dtype)
        carried = shift if layer.offsets is None else layer.offsets + shift
        layers[i] = replace(layer, params=replace(layer.params, bias=layer.params.bias + shift), act='relu',
                            offsets=carried)
        layers[i + 1] = replace(layers[i + 1], params=m.read_offsets(layers[i + 1].params, shift))
    return layers


def _feature_offsets(layer: Layer, emits_ones: bool) -> torch.Tensor:
    """The constant on each channel of the layer's output (after the shuffle), the emitted ones channel included."""
    out = layer.params.out_channels
    offsets = torch.zeros(out, dtype=torch.float64) if layer.offsets is None else layer.offsets.double()
    if emits_ones:
        offsets = torch.cat([offsets, offsets.new_ones(layer.shuffle * layer.shuffle)])
    return offsets[::layer.shuffle * layer.shuffle].clone()  # a shuffle keeps channel c * s^2 + k as channel c


def export(layers: list[Layer], in_channels: int, base_upscale: int = 0,
           dtype: torch.dtype = torch.float32) -> PlainConvSR:
    """The plain network of ``layers``: centre-only ones kernels folded into biases, the others fed by a ones
    channel the previous layer emits (bias 1, zero weights), or by one ones channel concatenated to the input."""
    params = [m.fold_ones(layer.params) if m.ones_is_central(layer.params) else layer.params for layer in layers]
    needs = [p.ones is not None for p in params]
    slopes = {layer.slope for layer in layers if layer.act == 'lrelu'}
    if len(slopes) > 1:
        raise NotConvertibleError(f'LeakyReLU layers with different slopes {sorted(slopes)}')
    finals = []
    for i, (p, layer) in enumerate(zip(params, layers)):
        weight, bias = p.weight, p.bias
        if needs[i]:
            weight = torch.cat([weight, p.ones[:, None]], dim=1)
        if i + 1 < len(layers) and needs[i + 1]:
            extra = layer.shuffle * layer.shuffle
            weight = torch.cat([weight, weight.new_zeros(extra, *weight.shape[1:])])
            bias = torch.cat([bias, bias.new_ones(extra)])
        finals.append(ConvParams(weight, bias))
    net = PlainConvSR(in_channels, [p.out_channels for p in finals], [p.kernel_size for p in finals],
                      [layer.act for layer in layers], [layer.shuffle for layer in layers],
                      negative_slope=slopes.pop() if slopes else 0.1, input_ones=needs[0] if needs else False,
                      base_upscale=base_upscale).to(dtype)
    with torch.no_grad():
        for conv, p in zip(net.convs(), finals):
            conv.weight.copy_(p.weight)
            conv.bias.copy_(p.bias)
    net.feature_offsets = [_feature_offsets(layer, i + 1 < len(layers) and needs[i + 1])
                           for i, layer in enumerate(layers)]
    return net


def convert(net: nn.Module | Network, offset: float = DEFAULT_OFFSET, dtype: torch.dtype = torch.float32,
            in_channels: int | None = None, relu_body: bool = False) -> PlainConvSR:
    """An equivalent :class:`PlainConvSR` of ``net`` (exact while every skipped value exceeds ``-offset``).

    Args:
        net: The network (or its description).
        offset: The constant ``C`` that carries values through a ReLU (Prop. 3.6).
        dtype: Parameter dtype of the result.
        in_channels: Input channels when the network has no describer and its first conv does not say.
        relu_body: Export the paper's form, conv + activation in every body layer (see the module docstring);
            False keeps the layers' own activations (block outputs without one), which needs no ones channel.

    Raises :class:`NotConvertibleError`, naming the module, for anything without an exact plain form.
    """
    network = net if isinstance(net, Network) else describe_network(net, in_channels)
    layers = compile_nodes(network.nodes, network.in_channels, offset)
    if not layers:
        raise NotConvertibleError(f'{type(net).__name__}: nothing to convert')
    if relu_body:
        layers = activate_body(layers, offset)
    return export(layers, network.in_channels, network.base_upscale, dtype)
