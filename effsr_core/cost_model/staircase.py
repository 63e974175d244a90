"""The staircase of a layer's latency against its width: which widths are worth keeping on this device.

A conv's latency does not grow smoothly with its channel count: kernels work on blocks of channels, so widths inside
one block cost the same, and a wider layer can even be faster than a narrower one (a width the kernel has a fast path
for). ``fastest_widths`` reads a measured width -> latency curve and maps every width to the one to use instead:
the fastest measured width at least as wide, the widest of those within ``tolerance`` of it (units that cost
nothing are kept). ``width_latencies`` measures that curve for a probe layer on a cost table.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from torch import nn

from effsr_core.cost_model.prediction import predict_latency
from effsr_core.cost_model.table import CostTable


def candidate_widths(size: int, step: int) -> list[int]:
    """The widths a layer of ``size`` units may take: the multiples of ``step`` up to it, and ``size`` itself."""
    return sorted({*range(step, size + 1, step), size})


def fastest_widths(latencies: Mapping[int, float], tolerance: float = 0.01) -> dict[int, int]:
    """For every width from 1 to the widest measured one, the measured width to use instead (at least as wide):
    among the measured widths >= it, the widest whose latency is within ``tolerance`` (relative) of the fastest."""
    measured = sorted(latencies)
    if not measured or measured[0] < 1:
        raise ValueError(f'widths must be positive and at least one measured, got {measured}')
    choice = {}
    for width in range(1, measured[-1] + 1):
        wider = [w for w in measured if w >= width]
        fastest = min(latencies[w] for w in wider)
        choice[width] = max(w for w in wider if latencies[w] <= fastest * (1 + tolerance))
    return choice


def width_latencies(probe: callable, widths: Iterable[int], input_shape, table: CostTable) -> dict[int, float]:
    """Predicted latency (ms) of ``probe(width)``, a module taking ``input_shape``, for each width (the table
    measures what it lacks)."""
    return {int(w): predict_latency(probe(int(w)), input_shape, table).total_ms for w in widths}


def conv_probe(channels: int, kernel_size: int = 3) -> callable:
    """A layer of ``width`` filters between two of ``channels``: the producing and the consuming conv a pruned
    group of units changes (a residual block's convs)."""
    def build(width: int) -> nn.Module:
        padding = kernel_size // 2
        return nn.Sequential(nn.Conv2d(channels, width, kernel_size, padding=padding),
                             nn.Conv2d(width, channels, kernel_size, padding=padding))
    return build


def layer_width_choice(table: CostTable, channels: int, size: int, step: int, lr_size) -> dict[int, int]:
    """For every width up to ``size`` of a layer between layers of ``channels`` at ``lr_size`` (height, width), the
    width to use on ``table``'s device: ``fastest_widths`` over the ``candidate_widths`` of ``step``, measured on
    ``conv_probe``."""
    widths = candidate_widths(size, step)
    return fastest_widths(width_latencies(conv_probe(channels), widths, (1, channels, *lr_size), table))
