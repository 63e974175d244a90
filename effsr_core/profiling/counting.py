"""Parameter and operation counting: MACs/FLOPs (torch's counter), NTIRE FLOPs, activations and #conv.

Operations are counted on one forward pass watched by two dispatch modes:

* ``torch.utils.flop_counter.FlopCounterMode`` (torch's own formulas, 2 FLOPs per multiply-accumulate) gives
  ``flops`` and ``macs = flops / 2``;
* ``_ConvActivationCounter`` sees every aten convolution call, whether it comes from an ``nn.Conv2d`` or a functional
  ``F.conv2d``, and every activation op. It gives the NTIRE efficient-SR quantities: ``num_conv`` (conv calls),
  ``activations`` (elements of all conv outputs), and ``ntire_flops`` = conv MACs + conv bias elements + elements
  produced by activation ops, the convention of the challenge kit's hook counter (which calls MACs "FLOPs").

Sub-modules named in ``exclude`` (e.g. a pretrained optical-flow SpyNet) are counted apart: forward hooks mark when
one of them runs and every count made meanwhile goes to that module's bucket.

The pass first runs shapes-only: parameters, buffers and input become fake tensors (``FakeTensorMode``: meta
storage, no arithmetic, but the real device is reported so ``x.type()`` / ``x.device`` code keeps working), so a
300-GMAC video model is counted in about a second. When the model cannot run that way (an op without a meta kernel,
or control flow reading tensor values, e.g. MMagic's mirror-extension check on an even number of frames), it falls
back to a real forward, which gives the same counts slowly.
"""
from __future__ import annotations

import logging
import math
from contextlib import nullcontext
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Iterable

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.func import functional_call
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

logger = logging.getLogger(__name__)

_aten = torch.ops.aten
CONV_OPS = frozenset({_aten.convolution, _aten._convolution})
#: Activation ops whose output elements the NTIRE convention adds to the FLOPs, as the dispatcher sees them (aten
#: names, in-place '_' stripped): selu arrives as elu, relu6 as hardtanh, prelu as _prelu_kernel. Not sigmoid.
ACTIVATION_OPS = frozenset({'relu', 'leaky_relu', '_prelu_kernel', 'elu', 'celu', 'hardtanh', 'gelu', 'silu',
                            'hardswish', 'mish', 'rrelu_with_noise'})
#: fvcore's default handles (facebookresearch/fvcore, fvcore/nn/flop_count.py ``_DEFAULT_SUPPORTED_OPS`` and the
#: formulas of fvcore/nn/jit_handles.py), keyed by the aten op the dispatcher sees instead of the traced TorchScript
#: op: ``aten::_convolution`` -> convolution; ``aten::linear`` / ``addmm`` / ``matmul`` / ``einsum`` / ``bmm`` ->
#: addmm, mm, bmm; batch / group / layer / instance norm -> native_batch_norm (instance norm arrives as a training-mode
#: batch norm, as fvcore counts it), native_group_norm, native_layer_norm; upsample_nearest2d, upsample_bilinear2d;
#: adaptive_avg_pool2d -> _adaptive_avg_pool2d, or ``mean`` over dims [-1, -2] for a 1x1 output; grid_sampler ->
#: grid_sampler_2d. Every other op (element-wise arithmetic, activations, pooling other than adaptive average,
#: pixel_shuffle, softmax, scaled_dot_product_attention, ...) has no handler in fvcore and is skipped, as fvcore skips
#: it. Not reproducible at this level: an explicit ``torch.mm`` (fvcore has no ``aten::mm`` handle; counted here) and
#: an explicit ``x.mean((-1, -2), keepdim=True)`` (indistinguishable from a 1x1 adaptive average pool; counted here).
FVCORE_OPS = frozenset({'convolution', '_convolution', 'mm', 'addmm', 'bmm', 'native_batch_norm',
                        '_native_batch_norm_legit_no_training', 'native_group_norm', 'native_layer_norm',
                        'upsample_nearest2d', 'upsample_bilinear2d', '_adaptive_avg_pool2d', 'mean',
                        'grid_sampler_2d'})
MAIN_BUCKET = 'main'
#: ``OpReport.counted_on`` of a shapes-only pass (fake tensors on meta storage).
SHAPES_ONLY = 'meta'


@dataclass(frozen=True)
class ParamCount:
    """Parameter counts of a model.

    Attributes:
        total: All parameters (shared ones once).
        counted: Parameters outside the excluded sub-modules.
        excluded: Parameters of each excluded sub-module, by qualified name.
    """
    total: int
    counted: int
    excluded: dict[str, int] = field(default_factory=dict)


@dataclass
class OpCount:
    """Operation counts of one part of a model (per output frame for video models).

    Attributes:
        macs: Multiply-accumulates, ``flops / 2``.
        flops: FLOPs from ``torch.utils.flop_counter.FlopCounterMode``.
        ntire_flops: ``conv_macs + conv_bias_elements + activation_op_elements`` (NTIRE challenge convention).
        activations: Elements of all conv outputs (NTIRE "#Acts").
        num_conv: Number of convolution calls.
        conv_macs: Multiply-accumulates of the convolutions.
        conv_bias_elements: Bias additions of the convolutions (out channels x output positions).
        activation_op_elements: Elements produced by activation ops (relu, leaky_relu, prelu, gelu, ...).
        fvcore_flops: fvcore's figure, one multiply-add = one flop over the ops fvcore has a handler for
            (``FVCORE_OPS``; conv bias and every op without a handler skipped): the NTIRE 2024-2026 "FLOPs".
    """
    macs: float = 0.0
    flops: float = 0.0
    ntire_flops: float = 0.0
    activations: float = 0.0
    num_conv: float = 0.0
    conv_macs: float = 0.0
    conv_bias_elements: float = 0.0
    activation_op_elements: float = 0.0
    fvcore_flops: float = 0.0

    def divided(self, divisor: int) -> OpCount:
        """The same counts divided by ``divisor`` (e.g. the number of frames)."""
        return OpCount(**{item.name: getattr(self, item.name) / divisor for item in fields(self)})


@dataclass
class OpReport:
    """Operation counts of one forward pass.

    Attributes:
        counted: Counts outside the excluded sub-modules.
        excluded: Counts of each excluded sub-module, by qualified name.
        frames: Output frames of the pass; every count is divided by it (1 for image models).
        input_shape: Shape of the input used.
        counted_on: Device the pass ran on ('meta' when only shapes were computed).
    """
    counted: OpCount
    excluded: dict[str, OpCount]
    frames: int
    input_shape: list[int]
    counted_on: str


def find_excluded_modules(model: nn.Module, exclude: Iterable[str]) -> dict[str, nn.Module]:
    """Sub-modules whose qualified name, or its last component, is in ``exclude`` (outermost matches only).

    Args:
        model: The network.
        exclude: Names such as ``('spynet',)``.

    Returns:
        Matched sub-modules by qualified name; a match nested in another match is left out.
    """
    wanted = set(exclude)
    matched: dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        if not name or not (name in wanted or name.rsplit('.', 1)[-1] in wanted):
            continue
        if not any(name.startswith(f'{outer}.') for outer in matched):
            matched[name] = module
    return matched


def count_parameters(model: nn.Module, exclude: Iterable[str] = ()) -> ParamCount:
    """Count parameters, with the excluded sub-modules reported apart.

    Args:
        model: The network (count after loading a checkpoint: some networks rebuild themselves when loading).
        exclude: Sub-module names to report apart (see ``find_excluded_modules``).

    Returns:
        Total, counted (outside the excluded modules) and per-excluded-module counts.
    """
    excluded_ids: set[int] = set()
    excluded: dict[str, int] = {}
    for name, module in find_excluded_modules(model, exclude).items():
        own = {id(param): param.numel() for param in module.parameters()}
        excluded[name] = sum(own.values())
        excluded_ids.update(own)
    unique = {id(param): param.numel() for param in model.parameters()}
    total = sum(unique.values())
    return ParamCount(total=total, counted=total - sum(unique[key] for key in excluded_ids), excluded=excluded)


def output_frames(output: torch.Tensor) -> int:
    """Frames produced by one call: ``t`` for a (b, t, c, h, w) video output, else 1."""
    return output.shape[1] if output.dim() == 5 else 1


@dataclass
class _Tally:
    """Raw integer counts of one bucket."""
    flops: int = 0
    num_conv: int = 0
    activations: int = 0
    conv_macs: int = 0
    conv_bias_elements: int = 0
    activation_op_elements: int = 0
    fvcore_flops: int = 0

    def as_op_count(self, frames: int) -> OpCount:
        ntire_flops = self.conv_macs + self.conv_bias_elements + self.activation_op_elements
        return OpCount(macs=self.flops / 2, flops=self.flops, ntire_flops=ntire_flops, activations=self.activations,
                       num_conv=self.num_conv, conv_macs=self.conv_macs, conv_bias_elements=self.conv_bias_elements,
                       activation_op_elements=self.activation_op_elements,
                       fvcore_flops=self.fvcore_flops).divided(frames)


class _ConvActivationCounter(TorchDispatchMode):
    """Counts conv calls and activation ops, and splits torch's FLOP count, into per-region buckets.

    It must be entered inside ``flop_counter`` so that each op reaches it first: the FLOPs that torch's counter adds
    while running the op are attributed to the bucket of the region the op runs in.
    """

    def __init__(self, flop_counter: FlopCounterMode, excluded: dict[str, nn.Module]):
        super().__init__()
        self.flop_counter = flop_counter
        self.tallies = {MAIN_BUCKET: _Tally(), **{name: _Tally() for name in excluded}}
        self._active_excluded: list[str] = []
        self._hooks = []
        for name, module in excluded.items():
            self._hooks.append(module.register_forward_pre_hook(self._enter_region(name)))
            self._hooks.append(module.register_forward_hook(self._leave_region, always_call=True))

    def _enter_region(self, name: str):
        def hook(module: nn.Module, args: tuple) -> None:
            self._active_excluded.append(name)
        return hook

    def _leave_region(self, module: nn.Module, args: tuple, output: object) -> None:
        self._active_excluded.pop()

    def remove_hooks(self) -> None:
        """Detach the region hooks from the excluded modules."""
        for hook in self._hooks:
            hook.remove()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        flops_before = self.flop_counter.get_total_flops()
        output = func(*args, **kwargs)
        tally = self.tallies[self._active_excluded[0] if self._active_excluded else MAIN_BUCKET]
        tally.flops += self.flop_counter.get_total_flops() - flops_before
        packet = func.overloadpacket
        if packet in CONV_OPS:
            self._count_conv(tally, args, output)
        elif packet.__name__.rstrip('_') in ACTIVATION_OPS:
            tally.activation_op_elements += output.numel()
        if packet.__name__ in FVCORE_OPS:
            tally.fvcore_flops += fvcore_op_flops(packet.__name__, args, output)
        return output

    @staticmethod
    def _count_conv(tally: _Tally, args: tuple, output: torch.Tensor) -> None:
        conv_input, weight, bias, transposed = args[0], args[1], args[2], args[6]
        # weight is (out, in/groups, k...) for a conv and (in, out/groups, k...) for a transposed conv.
        per_element = weight.shape[1] * math.prod(weight.shape[2:])
        tally.num_conv += 1
        tally.activations += output.numel()
        tally.conv_macs += (conv_input.numel() if transposed else output.numel()) * per_element
        if bias is not None:
            tally.conv_bias_elements += output.numel()


def _affine_factor(weight: object, with_affine: int, without: int) -> int:
    return with_affine if weight is not None else without


def fvcore_op_flops(name: str, args: tuple, output: object) -> int:
    """fvcore's count for one aten op (0 for an op it has no handler for), one multiply-add = one flop.

    The formulas follow fvcore/nn/jit_handles.py (facebookresearch/fvcore): conv and matrix products count their
    multiply-adds (no bias); eval batch norm 1 per input element, 2 with an affine weight; training-mode batch norm,
    instance, group and layer norm 4 per input element, 5 with an affine weight; nearest / bilinear upsampling 1 / 4
    per output element; adaptive average pooling 1 per input element; grid sampling 4 per output element.

    Args:
        name: Overload-packet name of the aten op (``func.overloadpacket.__name__``).
        args: Positional arguments of the call.
        output: What the op returned (a tensor or a tuple whose first item is the result).

    Returns:
        The flops fvcore attributes to the op.
    """
    first = output[0] if isinstance(output, (tuple, list)) else output
    if name in ('convolution', '_convolution'):
        conv_input, weight, transposed = args[0], args[1], args[6]
        positions = conv_input.shape[2:] if transposed else first.shape[2:]
        return conv_input.shape[0] * math.prod(weight.shape) * math.prod(positions)
    if name in ('mm', 'addmm'):
        left, right = (args[0], args[1]) if name == 'mm' else (args[1], args[2])
        return left.shape[0] * left.shape[1] * right.shape[1]
    if name == 'bmm':
        return math.prod(args[0].shape) * args[1].shape[-1]
    if name == 'native_batch_norm':  # (input, weight, bias, running_mean, running_var, training, momentum, eps)
        return args[0].numel() * (_affine_factor(args[1], 5, 4) if args[5] else _affine_factor(args[1], 2, 1))
    if name == '_native_batch_norm_legit_no_training':
        return args[0].numel() * _affine_factor(args[1], 2, 1)
    if name == 'native_group_norm':  # (input, weight, bias, N, C, HxW, group, eps)
        return args[0].numel() * _affine_factor(args[1], 5, 4)
    if name == 'native_layer_norm':  # (input, normalized_shape, weight, bias, eps)
        return args[0].numel() * _affine_factor(args[2], 5, 4)
    if name in ('upsample_nearest2d', 'upsample_bilinear2d', 'grid_sampler_2d'):
        return first.numel() * (1 if name == 'upsample_nearest2d' else 4)
    if name == '_adaptive_avg_pool2d':
        return args[0].numel()
    if name == 'mean' and _is_global_average_pool(args):
        return args[0].numel()
    return 0


def _is_global_average_pool(args: tuple) -> bool:
    """Whether a ``mean`` call is the one ``adaptive_avg_pool2d(x, 1)`` decomposes into: dims [-1, -2], keepdim."""
    return (len(args) >= 3 and args[0].dim() in (3, 4) and list(args[1] or ()) == [-1, -2] and args[2] is True)


def _count_pass(model: nn.Module, inputs: torch.Tensor, excluded: dict[str, nn.Module], shapes_only: bool
                ) -> tuple[dict[str, _Tally], int]:
    """One forward under both counters; returns the raw tallies and the number of output frames.

    With ``shapes_only`` the parameters, buffers and input are swapped for fake tensors for this call only
    (``torch.func.functional_call``): meta storage, but the real device is reported, so code such as
    ``x.type()`` or ``x.device`` checks behaves as on real data.
    """
    flop_counter = FlopCounterMode(display=False)
    counter = _ConvActivationCounter(flop_counter, excluded)
    try:
        with torch.no_grad(), FakeTensorMode(allow_non_fake_inputs=True) if shapes_only else nullcontext() as fake:
            forward = model
            if fake is not None:
                state = {name: fake.from_tensor(tensor) for name, tensor in (*model.named_parameters(),
                                                                             *model.named_buffers())}
                forward = partial(functional_call, model, state)
                inputs = fake.from_tensor(inputs)
            with flop_counter, counter:
                output = forward(inputs)
    finally:
        counter.remove_hooks()
    return counter.tallies, output_frames(output)


def count_ops(model: nn.Module, inputs: torch.Tensor, exclude: Iterable[str] = (), use_meta: bool = True
              ) -> OpReport:
    """Count the operations of one inference forward pass, per output frame.

    Args:
        model: The network, switched to eval mode here. It is neither moved nor copied: the shapes-only pass swaps
            its parameters for fake tensors for the duration of the call only.
        inputs: A (b, c, h, w) image or (b, t, c, h, w) video batch on the model's device.
        exclude: Sub-module names counted apart (see ``find_excluded_modules``).
        use_meta: Try the shapes-only pass (meta storage) before a real forward.

    Returns:
        The counts outside and inside the excluded sub-modules, divided by the number of output frames.
    """
    model.eval()
    excluded = find_excluded_modules(model, exclude)
    device = str(inputs.device)
    tallies = None
    if use_meta:
        try:
            tallies, frames = _count_pass(model, inputs, excluded, shapes_only=True)
            device = SHAPES_ONLY
        except Exception as error:  # an op without a meta kernel, or control flow reading tensor values
            logger.warning('Shapes-only counting failed (%s: %s); counting with a real forward instead.',
                           type(error).__name__, error)
    if tallies is None:
        tallies, frames = _count_pass(model, inputs, excluded, shapes_only=False)
    return OpReport(counted=tallies[MAIN_BUCKET].as_op_count(frames),
                    excluded={name: tallies[name].as_op_count(frames) for name in excluded},
                    frames=frames, input_shape=list(inputs.shape), counted_on=device)
