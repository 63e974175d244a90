"""A network's predicted latency: the sum of the table entries of the calls its forward makes.

The calls are read from the forward itself (``trace_network``), not from per-architecture code: a copy of the
network in the backend's device and memory format runs once on a fake input of the target size (``FakeTensorMode``:
shapes and strides as the device's kernels would give them, e.g. a conv with channels-last weights returns a
channels-last tensor on the CPU, which ``meta`` tensors get wrong; no compute), which records every call exactly
(a forward that fake tensors cannot run, e.g. one that reads a tensor's values, is traced for real instead). Any registered architecture, dense or compact (an SSL plan,
lite widths, MemSR's per-layer widths), gives its own call list. Video networks take (b, t, 3, h, w) and are
reported per frame (the forward's total over ``t``); image networks per image (over the batch).
"""
from __future__ import annotations

import copy
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from effsr_core.cost_model.calls import CallRecorder, OpCall, conv_fields
from effsr_core.cost_model.device_key import CostBackend
from effsr_core.cost_model.table import CostTable


@dataclass(frozen=True)
class NetworkTrace:
    """The priced calls of one forward at ``input_shape``, in order; ``unreplayable`` names calls left unpriced."""
    calls: tuple[OpCall, ...]
    input_shape: tuple[int, ...]
    frames: int
    unreplayable: tuple[str, ...] = ()

    def conv_layers(self) -> list[dict]:
        """The conv2d calls as layer descriptions (``calls.conv_fields``), in call order."""
        return [fields for fields in map(conv_fields, self.calls) if fields is not None]

    def op_counts(self) -> Counter:
        """How many calls of each function the forward makes."""
        return Counter(call.name for call in self.calls)


@dataclass(frozen=True)
class Prediction:
    """Predicted latency of one forward (``total_ms``), per output frame or image, and where it goes."""
    total_ms: float
    frames: int
    by_op: dict[str, float]
    calls: int
    unreplayable: tuple[str, ...]

    @property
    def per_frame_ms(self) -> float:
        return self.total_ms / self.frames


def frames_of(input_shape: Sequence[int]) -> int:
    """Output frames (video: t of (b, t, c, h, w)) or images (batch of (b, c, h, w)) of one forward."""
    return int(input_shape[1]) if len(input_shape) == 5 else int(input_shape[0])


def _record(network: nn.Module, inputs: torch.Tensor) -> CallRecorder:
    recorder = CallRecorder()
    with torch.no_grad(), recorder:
        network(inputs)
    return recorder


def trace_network(network: nn.Module, input_shape: Sequence[int], backend: CostBackend) -> NetworkTrace:
    """The calls ``network`` makes on one input of ``input_shape`` when prepared for ``backend`` (the network
    itself is left as it is)."""
    shape = tuple(int(v) for v in input_shape)
    twin = backend.prepare(copy.deepcopy(network))
    try:
        with FakeTensorMode(allow_non_fake_inputs=True):
            recorder = _record(twin, torch.empty(shape, device=backend.torch_device))
    except Exception:  # noqa: BLE001  a data-dependent forward (or one fake tensors cannot run): trace for real
        recorder = _record(twin, torch.rand(shape, device=backend.torch_device))
    return NetworkTrace(tuple(recorder.calls), shape, frames_of(shape), tuple(recorder.unreplayable))


def predict_calls(calls: Iterable[OpCall], table: CostTable, frames: int = 1,
                  unreplayable: Sequence[str] = ()) -> Prediction:
    """The sum of the table entries of ``calls`` (missing ones measured and saved first)."""
    calls = list(calls)
    table.ensure(calls)
    by_op: dict[str, float] = defaultdict(float)
    for call in calls:
        by_op[call.name] += table.latency_ms(call)
    return Prediction(sum(by_op.values()), frames, dict(by_op), len(calls), tuple(unreplayable))


def predict_latency(network: nn.Module, input_shape: Sequence[int], table: CostTable) -> Prediction:
    """Predicted latency of ``network`` on ``table``'s backend at ``input_shape`` (see the module docstring)."""
    trace = trace_network(network, input_shape, table.backend)
    return predict_calls(trace.calls, table, trace.frames, trace.unreplayable)
