"""What a cost table was measured on: the backend a network runs under, and the key a cached table is stored with.

A backend here is how the network is prepared before it runs: on which device and in which memory format
(``eager-nchw``, ``eager-channels_last`` on the CPU; ``cuda-eager-nchw`` / ``cuda-eager-channels_last`` where a GPU
is present). The key names everything a latency depends on besides the call itself: device model, thread count,
backend, torch and its kernel libraries (oneDNN on the CPU, cuDNN / CUDA on a GPU).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from effsr_core.profiling.timing import device_name


@dataclass(frozen=True)
class CostBackend:
    """A device and the memory format the network's weights are put in."""
    name: str
    device: str
    memory_format: str

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    def prepare(self, network: nn.Module) -> nn.Module:
        """``network`` in eval mode on this backend's device and memory format (the form that is timed)."""
        return network.eval().to(self.torch_device, memory_format=getattr(torch, self.memory_format))


BACKENDS = {
    'eager-nchw': CostBackend('eager-nchw', 'cpu', 'contiguous_format'),
    'eager-channels_last': CostBackend('eager-channels_last', 'cpu', 'channels_last'),
    'cuda-eager-nchw': CostBackend('cuda-eager-nchw', 'cuda', 'contiguous_format'),
    'cuda-eager-channels_last': CostBackend('cuda-eager-channels_last', 'cuda', 'channels_last'),
}


class CostModelError(ValueError):
    """Bad input to the cost model (unknown or unavailable backend, a table of another key); one line."""


def get_backend(name: str) -> CostBackend:
    """The backend called ``name``; one line naming the choices when it is unknown or has no device here."""
    if name not in BACKENDS:
        raise CostModelError(f'cost model backend {name!r} is unknown; choose from {", ".join(BACKENDS)}')
    backend = BACKENDS[name]
    if backend.device == 'cuda' and not torch.cuda.is_available():
        available = ', '.join(n for n, b in BACKENDS.items() if b.device == 'cpu')
        raise CostModelError(f'cost model backend {name!r} needs a CUDA GPU, and none is available; use {available}')
    return backend


def _onednn_version() -> str | None:
    match = re.search(r'(?:oneDNN|MKL-DNN) v([\w.]+)', torch.__config__.show())
    return match.group(1) if match else None


def table_key(backend: CostBackend) -> dict[str, str | int | None]:
    """The key a table measured now under ``backend`` is stored with (compared field by field on loading)."""
    key: dict[str, str | int | None] = {
        'backend': backend.name, 'device': device_name(backend.torch_device), 'threads': torch.get_num_threads(),
        'torch': torch.__version__, 'dtype': 'float32'}
    if backend.device == 'cpu':
        key['onednn'] = _onednn_version()
    else:
        key['cuda'] = torch.version.cuda
        key['cudnn'] = torch.backends.cudnn.version()
    return key


def key_difference(stored: dict, current: dict) -> str | None:
    """``field stored -> current`` for every field that differs, or None when the keys agree."""
    differing = [f'{name} {stored.get(name)!r} -> {current.get(name)!r}' for name in sorted(set(stored) | set(current))
                 if stored.get(name) != current.get(name)]
    return '; '.join(differing) or None
