"""The torch calls a network makes, as data: what the cost table prices and how each one is replayed alone.

A forward is recorded under a ``TorchFunctionMode``: every top-level torch call (``F.conv2d``, ``torch.cat``,
``Tensor.index_add_``, ``F.grid_sample``, ``Tensor.__getitem__``, ...) that returns a tensor or writes one in place
becomes an ``OpCall``: the function's name and its arguments with every tensor replaced by its shape, strides (hence
its memory format) and dtype. Calls nested inside a recorded one (``F.interpolate``'s own aten call) run with the
mode off, so nothing is counted twice. The recording is architecture-agnostic: no layer type is named.

An ``OpCall`` replays alone on fresh tensors of the same layout (``replay_arguments``): floats are random, integer
index tensors of ``index_select`` / ``index_add`` hold evenly spaced, sorted, distinct indices (the shape of a
pruning plan's kept channels), and the ``grid`` of ``grid_sample`` is the identity grid plus a small shift (as
flow warping samples: near the pixel, not at random).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch.overrides import TorchFunctionMode, resolve_name

#: Calls that never cost time worth pricing although they return a tensor (pure metadata).
_IGNORED = frozenset({'torch.Tensor.__get__', 'torch.Tensor.data.__get__', 'torch.Tensor.detach', 'torch.Tensor.dim',
                      'torch.Tensor.size', 'torch.Tensor.stride'})
_INDEXING = ('index_select', 'index_add', 'index_add_')


class UnreplayableCall(ValueError):
    """An argument the recording cannot write down (the call is then left unpriced)."""


def call_name(func: Callable) -> str:
    """Dotted name of a torch function or Tensor method, e.g. ``torch.conv2d``, ``torch.Tensor.index_add_``."""
    name = resolve_name(func)
    if name:
        return name
    return f'{getattr(func, "__module__", None) or "torch"}.{getattr(func, "__qualname__", repr(func))}'


def encode(value: Any) -> Any:
    """A JSON-ready description of one argument: tensors by layout, Python values as they are."""
    if isinstance(value, torch.Tensor):
        return {'tensor': list(value.shape), 'stride': list(value.stride()), 'dtype': str(value.dtype)[6:]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Size):
        return {'size': list(value)}
    if isinstance(value, tuple):
        return {'tuple': [encode(item) for item in value]}
    if isinstance(value, list):
        return [encode(item) for item in value]
    if isinstance(value, slice):
        return {'slice': [encode(value.start), encode(value.stop), encode(value.step)]}
    if value is Ellipsis:
        return {'ellipsis': True}
    if isinstance(value, torch.dtype):
        return {'dtype': str(value)[6:]}
    if isinstance(value, torch.device):
        return {'device': True}  # replayed on the table's device
    if isinstance(value, torch.memory_format):
        return {'memory_format': str(value)[6:]}
    raise UnreplayableCall(f'cannot record an argument of type {type(value).__name__}')


@dataclass(frozen=True)
class OpCall:
    """One priced torch call: ``name`` and its encoded ``args`` / ``kwargs``; ``signature`` is the table key.

    ``func`` is the function itself when the call was recorded in this process (needed to replay it).
    """
    name: str
    args: tuple
    kwargs: dict
    func: Callable | None = field(default=None, compare=False, repr=False)

    @property
    def signature(self) -> str:
        return json.dumps([self.name, list(self.args), self.kwargs], sort_keys=True, separators=(',', ':'))

    @classmethod
    def record(cls, func: Callable, args: tuple, kwargs: dict) -> 'OpCall':
        return cls(call_name(func), tuple(encode(a) for a in args), {k: encode(v) for k, v in kwargs.items()}, func)


def _is_tensor_output(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    return isinstance(value, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in value)


class CallRecorder(TorchFunctionMode):
    """Records, in order, the calls of a forward that compute or write tensors (see the module docstring).

    ``calls`` holds the replayable ones; ``unreplayable`` the names of those with an argument that cannot be
    written down (their cost is then missing from a prediction, which reports them).
    """

    def __init__(self):
        super().__init__()
        self.calls: list[OpCall] = []
        self.unreplayable: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = call_name(func)
        try:
            call = OpCall(name, tuple(encode(a) for a in args), {k: encode(v) for k, v in kwargs.items()}, func)
        except UnreplayableCall:
            call = None
        out = func(*args, **kwargs)
        writes = name.endswith('_') or name.endswith('__setitem__')
        if name not in _IGNORED and not name.endswith('.__get__') and (writes or _is_tensor_output(out)):
            if call is None:
                self.unreplayable.append(name)
            else:
                self.calls.append(call)
        return out


def _dtype(name: str) -> torch.dtype:
    return getattr(torch, name)


def _evenly_spaced(count: int, full: int, device: torch.device) -> torch.Tensor:
    """``count`` sorted distinct indices spread over ``range(full)`` (a plan's kept channels)."""
    if count <= 0:
        return torch.zeros(0, dtype=torch.long, device=device)
    return torch.linspace(0, max(full - 1, 0), count, device=device).round().long().clamp_(0, max(full - 1, 0))


def _identity_grid(shape: list[int], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    n, h, w, _ = shape
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=device, dtype=dtype),
                            torch.linspace(-1, 1, w, device=device, dtype=dtype), indexing='ij')
    grid = torch.stack((xs, ys), dim=2).expand(n, h, w, 2)
    generator = torch.Generator(device=device).manual_seed(0)
    shift = torch.rand(grid.shape, generator=generator, device=device, dtype=dtype) * (2.0 / max(w, h))
    return grid + shift


def _tensor(spec: dict, device: torch.device) -> torch.Tensor:
    """A tensor with the recorded shape and strides (expanded, zero-stride ones too) over fresh storage."""
    dtype = _dtype(spec['dtype'])
    shape, stride = spec['tensor'], spec['stride']
    extent = 0 if 0 in shape else 1 + sum((size - 1) * step for size, step in zip(shape, stride))
    if dtype.is_floating_point:
        storage = torch.randn(extent, generator=torch.Generator().manual_seed(0)).to(device=device, dtype=dtype)
    else:
        storage = torch.zeros(extent, dtype=dtype, device=device)
    return storage.as_strided(shape, stride)


def _decode(value: Any, device: torch.device) -> Any:
    if isinstance(value, list):
        return [_decode(v, device) for v in value]
    if not isinstance(value, dict):
        return value
    if 'tensor' in value:
        return _tensor(value, device)
    if 'size' in value:
        return torch.Size(value['size'])
    if 'tuple' in value:
        return tuple(_decode(v, device) for v in value['tuple'])
    if 'slice' in value:
        return slice(*value['slice'])
    if 'ellipsis' in value:
        return Ellipsis
    if 'dtype' in value:
        return _dtype(value['dtype'])
    if 'device' in value:
        return device
    if 'memory_format' in value:
        return getattr(torch, value['memory_format'])
    raise UnreplayableCall(f'unknown argument description {value}')


def replay_arguments(call: OpCall, device: torch.device) -> tuple[tuple, dict]:
    """Fresh arguments of ``call`` on ``device`` with the recorded layouts and plausible values (module docstring)."""
    args = [_decode(a, device) for a in call.args]
    kwargs = {k: _decode(v, device) for k, v in call.kwargs.items()}
    short = call.name.rsplit('.', 1)[-1]
    if short in _INDEXING and len(args) >= 3 and isinstance(args[2], torch.Tensor):
        dim = args[1] if isinstance(args[1], int) else 0
        args[2] = _evenly_spaced(args[2].numel(), args[0].shape[dim], device)
    if short == 'grid_sample' and len(args) >= 2 and isinstance(args[1], torch.Tensor):
        args[1] = _identity_grid(list(args[1].shape), device, args[1].dtype)
    return tuple(args), kwargs


def conv_fields(call: OpCall) -> dict[str, Any] | None:
    """The layer description of a recorded ``conv2d`` call (None for another op): in/out channels, kernel,
    stride, padding, groups, input height and width, batch and the input's memory format."""
    if call.name.rsplit('.', 1)[-1] != 'conv2d':
        return None
    names = ('input', 'weight', 'bias', 'stride', 'padding', 'dilation', 'groups')
    bound = dict(zip(names, call.args)) | call.kwargs
    x, weight = bound['input'], bound['weight']
    n, c, h, w = x['tensor']
    return {'in_channels': c, 'out_channels': weight['tensor'][0], 'kernel': tuple(weight['tensor'][2:]),
            'stride': _pair(bound.get('stride', 1)), 'padding': _pair(bound.get('padding', 0)),
            'groups': bound.get('groups') or 1, 'batch': n, 'height': h, 'width': w,
            'memory_format': memory_format_of(x)}


def _pair(value: Any) -> tuple:
    if isinstance(value, dict):
        value = value['tuple']
    if isinstance(value, str):  # padding='same' / 'valid'
        return value
    return tuple(value) if isinstance(value, list) else (value, value)


def memory_format_of(spec: dict) -> str:
    """``contiguous``, ``channels_last`` or ``strided`` for an encoded 4-D tensor."""
    shape, stride = spec['tensor'], spec['stride']
    probe = torch.empty_strided(shape, stride, device='meta')
    if probe.is_contiguous():
        return 'contiguous'
    if probe.dim() == 4 and probe.is_contiguous(memory_format=torch.channels_last):
        return 'channels_last'
    return 'strided'
