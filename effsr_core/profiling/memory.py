"""Peak memory of one inference forward pass.

CUDA: ``torch.cuda.max_memory_allocated`` after ``torch.cuda.reset_peak_memory_stats``, as in the NTIRE
efficient-SR challenge (it includes the weights and the input already on the GPU).

CPU has no allocator statistics, so the peak is measured at the ATen operator level: the largest total size of the
tensor storages alive at the same time during the forward. The count starts with the storages of the parameters,
buffers and input; every storage an operator returns (found with a ``TorchDispatchMode``) is added when it first
appears and removed when it is freed (a ``weakref.finalize`` on the storage, whose Python object lives exactly as
long as the storage). Not included: scratch buffers an operator allocates and frees internally (im2col, oneDNN
workspaces), allocator rounding and caching, and growth of an existing storage by ``resize_``.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

CUDA_METHOD = 'torch.cuda.max_memory_allocated during the forward (includes weights and input)'
CPU_METHOD = ('peak total bytes of live tensor storages during the forward: parameters + buffers + input + every '
              'storage returned by an aten op until freed; op-internal scratch memory is not seen')


@dataclass(frozen=True)
class MemoryResult:
    """Peak memory of a forward pass.

    Attributes:
        peak_bytes: The peak, in bytes.
        device: Device the forward ran on.
        method: What ``peak_bytes`` measures.
    """
    peak_bytes: int
    device: str
    method: str


class LiveStorageTracker(TorchDispatchMode):
    """Tracks the total bytes of live tensor storages and its peak while active.

    Storages are registered with ``track`` (tensors that exist before the forward) or when an op returns them.
    """

    def __init__(self):
        super().__init__()
        self.live_bytes = 0
        self.peak_bytes = 0
        self._finalizers: dict[int, weakref.finalize] = {}

    def track(self, tensor: torch.Tensor) -> None:
        """Count the storage of ``tensor`` as live until it is freed (once per storage)."""
        if tensor.layout != torch.strided:
            return
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key in self._finalizers:
            return
        size = storage.nbytes()
        self._finalizers[key] = weakref.finalize(storage, self._release, key, size)
        self.live_bytes += size
        self.peak_bytes = max(self.peak_bytes, self.live_bytes)

    def _release(self, key: int, size: int) -> None:
        del self._finalizers[key]
        self.live_bytes -= size

    def stop(self) -> None:
        """Detach the finalizers of the storages still alive so that they no longer report to this tracker."""
        for finalizer in self._finalizers.values():
            finalizer.detach()
        self._finalizers.clear()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        output = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(output):
            if isinstance(leaf, torch.Tensor):
                self.track(leaf)
        return output


def measure_peak_memory(model: nn.Module, inputs: torch.Tensor) -> MemoryResult:
    """Peak memory of one ``model(inputs)`` under ``torch.no_grad()`` (CUDA allocator peak, or CPU live storages).

    Args:
        model: The network, already on the device of ``inputs``; switched to eval mode here.
        inputs: The input batch.

    Returns:
        The peak in bytes, the device and a description of the measure.
    """
    model.eval()
    device = inputs.device
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        with torch.no_grad():
            model(inputs)
        torch.cuda.synchronize(device)
        return MemoryResult(torch.cuda.max_memory_allocated(device), str(device), CUDA_METHOD)
    tracker = LiveStorageTracker()
    for tensor in (*model.parameters(), *model.buffers(), inputs):
        tracker.track(tensor)
    try:
        with torch.no_grad(), tracker:
            model(inputs)
    finally:
        tracker.stop()
    return MemoryResult(tracker.peak_bytes, str(device), CPU_METHOD)
