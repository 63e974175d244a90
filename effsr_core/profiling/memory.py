"""Peak memory of one inference forward pass.

CUDA: ``torch.cuda.max_memory_allocated`` after ``torch.cuda.reset_peak_memory_stats``, as in the NTIRE
efficient-SR challenge (it includes the weights and the input already on the GPU).

CPU has no allocator statistics, so the peak is measured at the ATen operator level: the largest total size of the
tensor storages alive at the same time during the forward. The count starts with the storages of the parameters,
buffers and input; every storage an operator returns (found with a ``TorchDispatchMode``) is added when it first
appears and removed when it is freed (a ``weakref.finalize`` on the storage, whose Python object lives exactly as
long as the storage). Not included: scratch buffers an operator allocates and frees internally (im2col, oneDNN
workspaces), allocator rounding and caching, and growth of an existing storage by ``resize_``.

A network compiled for another backend on the CPU (TorchScript, ONNX Runtime, OpenVINO: ``profiling.backends``)
allocates outside torch's storages, so there the peak is the growth of the process's resident memory during its
first forward (Linux: the high-water mark ``VmHWM`` reset through ``/proc/self/clear_refs``, minus ``VmRSS`` before
the forward). Free heap pages are first handed back to the system (glibc's ``malloc_trim``; without it OpenVINO's
forward reused the pages its compilation had freed and showed 24 instead of 112 MiB), so the count is everything the
forward touches, the backend's arena and scratch buffers included, but not the weights and input loaded before.
Memory an allocator keeps for itself (outside glibc's heap) and reuses is still not counted: a lower bound in a
process that ran other networks first.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import re
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

CUDA_METHOD = 'torch.cuda.max_memory_allocated during the forward (includes weights and input)'
CPU_METHOD = ('peak total bytes of live tensor storages during the forward: parameters + buffers + input + every '
              'storage returned by an aten op until freed; op-internal scratch memory is not seen')
RESIDENT_METHOD = ('growth of the process resident memory (VmHWM after minus VmRSS before, free heap pages returned '
                   'first) during the first forward of the compiled network: working memory, weights and input '
                   'excluded')
PROC_STATUS, CLEAR_REFS = Path('/proc/self/status'), Path('/proc/self/clear_refs')
#: Writing this to clear_refs resets the peak resident set size (VmHWM) to the current one (Linux >= 4.0).
RESET_PEAK_RSS = '5'


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


def _status_kib(field: str) -> int:
    match = re.search(rf'^{field}:\s+(\d+) kB', PROC_STATUS.read_text(), re.MULTILINE)
    if match is None:
        raise OSError(f'{PROC_STATUS} has no {field}')
    return int(match.group(1))


def resident_peak_supported() -> bool:
    """Whether this process can reset and read its peak resident memory (Linux with a writable clear_refs)."""
    try:
        CLEAR_REFS.write_text(RESET_PEAK_RSS)
        _status_kib('VmHWM')
    except OSError:
        return False
    return True


def release_free_heap_pages() -> None:
    """Hand free heap pages back to the system (glibc ``malloc_trim(0)``); nothing where there is no glibc."""
    name = ctypes.util.find_library('c')
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):  # no C library found, or not glibc
        pass


def measure_resident_growth(forward: Callable[[torch.Tensor], Any], inputs: torch.Tensor) -> MemoryResult | None:
    """Growth of the peak resident memory during one ``forward(inputs)`` (see the module docstring); None where the
    peak cannot be reset (not Linux, or clear_refs not writable)."""
    if not resident_peak_supported():
        return None
    release_free_heap_pages()
    before = _status_kib('VmRSS')
    CLEAR_REFS.write_text(RESET_PEAK_RSS)
    with torch.no_grad():
        forward(inputs)
    peak = _status_kib('VmHWM')
    return MemoryResult(max(peak - before, 0) * 1024, str(inputs.device), RESIDENT_METHOD)


def measure_peak_memory(model: nn.Module, inputs: torch.Tensor,
                        compiled: Callable[[torch.Tensor], Any] | None = None) -> MemoryResult | None:
    """Peak memory of one forward under ``torch.no_grad()``: CUDA allocator peak, CPU live storages for the eager
    network, or CPU resident-memory growth for a compiled one.

    Args:
        model: The network, already on the device of ``inputs``; switched to eval mode here.
        inputs: The input batch.
        compiled: The network compiled for another backend, measured instead of ``model``'s eager forward.

    Returns:
        The peak in bytes, the device and a description of the measure; None when a compiled network's peak cannot
        be measured here.
    """
    model.eval()
    device = inputs.device
    forward = model if compiled is None else compiled
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        with torch.no_grad():
            forward(inputs)
        torch.cuda.synchronize(device)
        return MemoryResult(torch.cuda.max_memory_allocated(device), str(device), CUDA_METHOD)
    if compiled is not None:
        return measure_resident_growth(compiled, inputs)
    tracker = LiveStorageTracker()
    for tensor in (*model.parameters(), *model.buffers(), inputs):
        tracker.track(tensor)
    try:
        with torch.no_grad(), tracker:
            model(inputs)
    finally:
        tracker.stop()
    return MemoryResult(tracker.peak_bytes, str(device), CPU_METHOD)
