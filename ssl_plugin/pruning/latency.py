"""Latency-targeted selection: the SSL criteria (Min/Max x Global/Local, pixel-shuffle groups) under a predicted
latency instead of a fixed ratio (``pruning.latency``).

The idea follows HALP (Shen et al., NeurIPS 2022: keep the most important units under a latency budget read from a
per-layer latency table); the search is SSL's own. The units are ranked by the configured selection as for a ratio;
every group's kept count is then moved to the fastest width of its step on this device (``cost_model.staircase``,
measured on a probe conv at the LR size: the units a step holds for free are kept), and the smallest ratio whose
compact network is predicted (``cost_model``, the whole forward traced) to meet the target is found by bisection.
Keeping the smallest such ratio keeps the most important units the budget allows; what the steps' granularity leaves
of the budget is then offered, one step at a time, to the groups whose next unit ranks highest.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from effsr_core.cost_model import (CostModelError, CostTable, default_table_path, get_backend, key_difference,
                                   layer_width_choice, predict_latency, table_key)
from effsr_core.options import OptionError
from ssl_plugin.pruning.config import LatencyTarget, PruningConfig
from ssl_plugin.pruning.interface import PrunableNetwork
from ssl_plugin.pruning.plan import PruningPlan
from ssl_plugin.pruning.selection import keep_counts, kept_units, largest_ratio, priorities, ranked_units

#: Bisection steps on the ratio (the last one moves the ratio by ~1e-4 of its range).
SEARCH_STEPS = 14
#: Groups offered one more step of units after the bisection, most important next unit first (what the budget
#: left by the steps' granularity still pays for).
FILL_TRIES = 24


class LatencyModel:
    """Predicted per-frame latency of a network in the form the target names (backend, LR size, clip length).

    Args:
        target: the ``pruning.latency`` settings.
        timer: how a missing table entry is measured (tests give a deterministic one; default: timed on the device).
    """

    def __init__(self, target: LatencyTarget, timer=None):
        backend = get_backend(target.backend)
        self.target = target
        self.table = CostTable.open(backend, target.table or default_table_path(backend), timer)
        self.input_shape = (1, target.frames, 3, *target.lr_size)

    def predict_ms(self, network: torch.nn.Module) -> float:
        return predict_latency(network, self.input_shape, self.table).per_frame_ms

    def width_choice(self, channels: int, size: int) -> dict[int, int]:
        """For every kept count of a group of ``size`` units between layers of ``channels``, the count to keep: the
        fastest width of its step (candidates: multiples of ``step``)."""
        return layer_width_choice(self.table, channels, size, self.target.step, self.target.lr_size)


def _predicted(net: PrunableNetwork, model: LatencyModel, ranked: Mapping[str, list[int]],
               counts: Mapping[str, int]) -> float:
    """Predicted latency of ``net`` keeping the first ``counts[name]`` units of every group's ranking."""
    kept = {name: idx for name, idx in kept_units(ranked, counts).items() if len(idx) < len(ranked[name])}
    return model.predict_ms(net.pruned(PruningPlan(arch=net.config, kept=kept)))


def reachable(net: PrunableNetwork, groups: Mapping[str, int], model: LatencyModel,
              prefix: str = 'pruning') -> tuple[float, float]:
    """The dense network's predicted latency and the target's; refuses (one line, the largest reachable speed-up)
    a target that pruning every unit of ``groups`` to its narrowest step cannot reach. Weights do not matter."""
    target = model.target
    ranked = {name: list(range(size)) for name, size in groups.items()}
    choice = model.width_choice(max(groups.values()), max(groups.values()))
    dense_ms = _predicted(net, model, ranked, groups)
    floor_ms = _predicted(net, model, ranked, {name: min(size, choice[1]) for name, size in groups.items()})
    goal = target.target_ms(dense_ms)
    if floor_ms > goal:
        option, value = ('speedup', f'{target.speedup:g}x') if target.speedup is not None else ('ms', f'{target.ms:g}')
        raise OptionError(f'{prefix}.latency.{option}: {value} is out of reach on {target.backend} at LR '
                          f'{target.lr_size[0]}x{target.lr_size[1]}: pruning every prunable unit gives at most '
                          f'{dense_ms / floor_ms:.2f}x ({floor_ms:.3g} ms per frame, dense {dense_ms:.3g} ms).')
    return dense_ms, goal


def select_for_latency(net: PrunableNetwork, scores: Mapping[str, torch.Tensor], config: PruningConfig,
                       model: LatencyModel, prefix: str = 'pruning') -> tuple[dict[str, list[int]], dict[str, Any]]:
    """Kept unit indices per group meeting ``config.latency``, and the record the plan keeps (target, backend,
    key, dense / predicted latency, the ratio found). Refuses a target that pruning every unit cannot reach."""
    target = config.latency
    ranked = ranked_units(scores, config)
    sizes = {name: len(order) for name, order in ranked.items()}
    channels = max(sizes.values())
    choice = model.width_choice(channels, channels)
    dense_ms, goal = reachable(net, sizes, model, prefix)

    def counts_at(ratio: float) -> dict[str, int]:
        return {name: min(sizes[name], choice[k]) for name, k in keep_counts(ranked, scores, config, ratio).items()}

    def predicted(counts: Mapping[str, int]) -> float:
        return _predicted(net, model, ranked, counts)

    low, high = 0.0, largest_ratio(ranked, config)
    if dense_ms <= goal:
        high = 0.0
    for _ in range(SEARCH_STEPS if high > 0 else 0):
        middle = (low + high) / 2
        low, high = (low, middle) if predicted(counts_at(middle)) <= goal else (middle, high)
    counts = counts_at(high)
    predicted_ms = predicted(counts)
    priority = priorities(scores, config.selection, config.seed)
    growable = [name for name in ranked if counts[name] < sizes[name]]
    growable.sort(key=lambda name: -float(priority[name][ranked[name][counts[name]]]))
    for name in growable[:FILL_TRIES]:
        trial = dict(counts, **{name: min(sizes[name], choice[min(channels, counts[name] + 1)])})
        trial_ms = predicted(trial)
        if trial_ms <= goal:
            counts, predicted_ms = trial, trial_ms
    record = {'target': target.describe(), 'speedup': target.speedup, 'ms': target.ms, 'backend': target.backend,
              'lr_size': list(target.lr_size), 'frames': target.frames, 'step': target.step, 'key': model.table.key,
              'dense_ms': round(dense_ms, 4), 'predicted_ms': round(predicted_ms, 4),
              'predicted_speedup': round(dense_ms / predicted_ms, 4), 'ratio': round(high, 6)}
    return kept_units(ranked, counts), record


def open_latency_model(target: LatencyTarget, prefix: str = 'pruning', timer=None) -> LatencyModel:
    """The cost model of a target, its backend and table refused in one line naming the option."""
    try:
        return LatencyModel(target, timer)
    except CostModelError as error:
        option = 'table' if 'cost table' in str(error) else 'backend'
        raise OptionError(f'{prefix}.latency.{option}: {error}') from None


def other_device(record: Mapping[str, Any] | None) -> str | None:
    """What differs between the device a plan's latency was predicted for and this one (None: same, or no latency
    record, or a backend this machine lacks, which is said too)."""
    if not record:
        return None
    try:
        current = table_key(get_backend(record['backend']))
    except ValueError as error:
        return str(error)
    return key_difference(record.get('key', {}), current)
