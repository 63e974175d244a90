"""A network as a chain of convertible operations with nested (non-intersecting) parallel branches, read from
an ``nn.Module`` without any toolbox import.

``describe(module)`` reads ``nn.Sequential``, ``nn.Conv2d``, ``nn.ReLU``, ``nn.LeakyReLU``, ``nn.PixelShuffle``
and ``nn.Identity`` directly, uses a describer registered for the module's class when there is one (the toolbox
adapters register their EDSR / MSRResNet / EDSRNet), and otherwise traces the module's forward with ``torch.fx``:
adds of two branches (``x + s * f(x)``, or two parallel convs summed), products and quotients by numbers, ReLU /
LeakyReLU and pixel shuffle. Anything else (attention, normalisation, interpolation, a value used outside its
branch, an unknown module) raises :class:`NotConvertibleError` naming the module by its qualified name.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Callable, Union

import torch
from torch import Tensor, fx, nn
from torch.nn import functional as F

from memsr_plugin.conversion.merges import NotConvertibleError


@dataclass
class Conv:
    module: nn.Conv2d
    name: str


@dataclass
class Act:
    kind: str  # 'relu' or 'lrelu'
    slope: float = 0.0
    name: str = ''


@dataclass
class Shuffle:
    factor: int
    name: str = ''


@dataclass
class Affine:
    """Per-channel ``x * scale + shift`` (a 1x1 conv): input normalisation, output de-normalisation, res_scale."""
    scale: Tensor
    shift: Tensor
    name: str = ''


@dataclass
class Parallel:
    """Branches on the same input, summed with ``scales`` (an empty branch is the identity: a skip)."""
    branches: list[list['Node']]
    scales: list[float]
    name: str = ''


Node = Union[Conv, Act, Shuffle, Affine, Parallel]


@dataclass
class Network:
    """A whole network: its nodes, and the bilinear upscale added to the output (0: none), kept as in the toolbox."""
    nodes: list[Node]
    in_channels: int
    base_upscale: int = 0
    notes: list[str] = field(default_factory=list)


_DESCRIBERS: dict[type, Callable[[nn.Module, str], Union[list, Network]]] = {}


def register_describer(cls: type) -> Callable:
    """Decorator: ``fn(module, name) -> list[Node] | Network`` describes modules of class ``cls``."""
    def decorator(fn: Callable) -> Callable:
        _DESCRIBERS[cls] = fn
        return fn
    return decorator


def residual(body: list[Node], res_scale: float = 1.0, name: str = '') -> Parallel:
    """``x + res_scale * body(x)``."""
    return Parallel([body, []], [float(res_scale), 1.0], name)


def describe(module: nn.Module, name: str = '') -> list[Node]:
    """The nodes of ``module`` (see the module docstring); ``name`` is its qualified name in the network."""
    describer = _DESCRIBERS.get(type(module))
    if describer is not None:
        result = describer(module, name)
        return result.nodes if isinstance(result, Network) else result
    if isinstance(module, nn.Sequential):
        return [node for child, module_ in module.named_children() for node in describe(module_, _join(name, child))]
    if isinstance(module, nn.Conv2d):
        return [Conv(module, name)]
    if isinstance(module, nn.ReLU):
        return [Act('relu', 0.0, name)]
    if isinstance(module, nn.LeakyReLU):
        return [Act('lrelu', float(module.negative_slope), name)]
    if isinstance(module, nn.PixelShuffle):
        return [Shuffle(int(module.upscale_factor), name)]
    if isinstance(module, nn.Identity):
        return []
    if type(module).__module__.startswith('torch.nn'):
        raise NotConvertibleError(f'{name or "<root>"}: {type(module).__name__} has no exact plain-conv form')
    return _trace(module, name)


def describe_network(module: nn.Module, in_channels: int | None = None) -> Network:
    """The whole network; a registered describer may return a :class:`Network` (e.g. with a bilinear base)."""
    describer = _DESCRIBERS.get(type(module))
    result = describer(module, '') if describer is not None else describe(module)
    if isinstance(result, Network):
        return result
    if in_channels is None:
        first = next((m for m in module.modules() if isinstance(m, nn.Conv2d)), None)
        if first is None:
            raise NotConvertibleError(f'{type(module).__name__}: no convolution to convert')
        in_channels = first.in_channels
    return Network(result, in_channels)


def _join(prefix: str, name: str) -> str:
    return f'{prefix}.{name}' if prefix and name else prefix or name


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return type(m) in _DESCRIBERS or super().is_leaf_module(m, qualname)


_ADDS = {operator.add, operator.iadd, torch.add}
_SCALES = {operator.mul: 1, operator.imul: 1, torch.mul: 1, operator.truediv: -1, operator.itruediv: -1}
_RELUS = {F.relu, torch.relu}
_SHUFFLES = {F.pixel_shuffle, torch.pixel_shuffle}


def _trace(module: nn.Module, name: str) -> list[Node]:
    try:
        graph = _Tracer().trace(module)
    except Exception as error:  # tracing failed: the forward is not a static chain of tensor operations
        raise NotConvertibleError(f'{name or "<root>"} ({type(module).__name__}): cannot trace its forward '
                                  f'({type(error).__name__}: {error})') from error
    inputs = [n for n in graph.nodes if n.op == 'placeholder']
    output = next(n for n in graph.nodes if n.op == 'output')
    if len(inputs) != 1:
        raise NotConvertibleError(f'{name or "<root>"} ({type(module).__name__}): forward takes {len(inputs)} inputs')
    return _ChainReader(module, name, graph).read(inputs[0], output.args[0])


class _ChainReader:
    """Reads a traced graph back into nested :class:`Parallel` chains; checks every value is used only inside
    its own branch (otherwise two skips intersect)."""

    def __init__(self, root: nn.Module, name: str, graph: fx.Graph):
        self.root, self.name, self.used = root, name, {}
        self.order = {node: i for i, node in enumerate(graph.nodes)}
        self.ancestors: dict[fx.Node, set] = {}
        for node in graph.nodes:
            self.ancestors[node] = {node}.union(*(self.ancestors[a] for a in node.all_input_nodes))

    def where(self, node: fx.Node) -> str:
        stack = list((node.meta.get('nn_module_stack') or {}).keys())
        if node.op == 'call_module':
            stack.append(node.target)
        return _join(self.name, stack[-1] if stack else '') or '<root>'

    def refuse(self, node: fx.Node, why: str) -> NotConvertibleError:
        return NotConvertibleError(f'{self.where(node)}: {why}')

    def read(self, start: fx.Node, end: fx.Node) -> list[Node]:
        nodes = self.chain(start, end)
        for node, users in ((n, len(n.users)) for n in self.ancestors[end] if n is not end):
            if self.used.get(node, 0) != users:
                raise self.refuse(node, f'intersecting skip connections: the value of {node.name!r} is used '
                                        f'outside its branch')
        return nodes

    def step(self, node: fx.Node) -> fx.Node:
        self.used[node] = self.used.get(node, 0) + 1
        return node

    def chain(self, start: fx.Node, end: fx.Node) -> list[Node]:
        out: list[Node] = []
        node = end
        while node is not start:
            if start not in self.ancestors[node]:
                raise self.refuse(node, f'intersecting skip connections: {node.name!r} does not depend on the '
                                        f'branch input {start.name!r}')
            tensors = [a for a in node.args if isinstance(a, fx.Node)]
            if node.op == 'call_function' and node.target in _ADDS and len(tensors) == 2 and not node.kwargs:
                a, b = tensors
                common = self.ancestors[a] & self.ancestors[b]
                fork = max(common, key=self.order.__getitem__)
                out.append(Parallel([self.chain(fork, self.step(a)), self.chain(fork, self.step(b))], [1.0, 1.0],
                                    self.where(node)))
                node = fork
                continue
            commutes = node.op == 'call_function' and node.target in (operator.mul, torch.mul)
            if len(tensors) != 1 or not (commutes or tensors[0] is node.args[0]) or len(node.args) > 2:
                raise self.refuse(node, f'{_op_name(node)} is not a single-input operation')
            out.extend(reversed(self.op(node)))
            node = self.step(tensors[0])
        return out[::-1]

    def op(self, node: fx.Node) -> list[Node]:
        where, extra = self.where(node), tuple(a for a in node.args if not isinstance(a, fx.Node))
        if node.op == 'call_module':
            return describe(self.root.get_submodule(node.target), where)
        return [self.function(node, where, extra)]

    def function(self, node: fx.Node, where: str, extra: tuple) -> Node:
        if node.op == 'call_function' and node.target in _SCALES and len(extra) == 1 and _number(extra[0]):
            value = float(extra[0]) ** _SCALES[node.target]
            return Affine(torch.tensor([value], dtype=torch.float64), torch.zeros(1, dtype=torch.float64), where)
        is_relu = node.target in _RELUS if node.op == 'call_function' else node.target == 'relu'
        if is_relu and node.op in ('call_function', 'call_method') and not extra:
            return Act('relu', 0.0, where)
        if node.op == 'call_function' and node.target is F.leaky_relu:
            slope = extra[0] if extra else node.kwargs.get('negative_slope', 0.01)
            return Act('lrelu', float(slope), where)
        if node.op == 'call_function' and node.target in _SHUFFLES and len(extra) == 1:
            return Shuffle(int(extra[0]), where)
        raise self.refuse(node, f'{_op_name(node)} has no exact plain-conv form')


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _op_name(node: fx.Node) -> str:
    target = node.target
    return f'{node.op} {getattr(target, "__name__", target)}'
