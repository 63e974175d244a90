"""Choose the units to prune from their importance scores (SSL Sec. 3.2 and the Table 3 ablation).

Selections: ``min_global`` (SSL: the N·p lowest L1 scores over all groups), ``max_global``, ``min_local`` /
``max_local`` (each group prunes its own share p) and ``random``. Every group keeps at least one unit. With
``round_to`` the kept count of each group is rounded to a multiple (8 or 16 suit oneDNN / tensor cores),
adding back or dropping units in score order.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch

from ssl_plugin.pruning.config import PruningConfig


def priorities(scores: Mapping[str, torch.Tensor], selection: str, seed: int) -> dict[str, torch.Tensor]:
    """Keep priority of every unit: units with the lowest priority are pruned first."""
    if selection == 'random':
        generator = torch.Generator().manual_seed(seed)
        return {name: torch.rand(len(s), generator=generator, dtype=torch.float64) for name, s in scores.items()}
    sign = 1.0 if selection.startswith('min') else -1.0
    return {name: sign * s.detach().double().cpu() for name, s in scores.items()}


def _ranked(priority: torch.Tensor) -> list[int]:
    """Indices from highest to lowest priority; ties broken by index, for determinism."""
    values = priority.tolist()
    return sorted(range(len(values)), key=lambda i: (-values[i], i))


def select_kept(scores: Mapping[str, torch.Tensor], config: PruningConfig,
                ratio: float | None = None) -> dict[str, list[int]]:
    """Kept unit indices per group, by ``config.selection`` at ``config.ratio`` (``round_to``, ``seed`` too).

    Args:
        scores: importance of every unit, per group (e.g. L1 norms).
        config: the checked settings: ``ratio`` is the fraction of units to prune, of all units (global) or of
            each group (local); ``round_to`` rounds each group's kept count to a multiple (at least one multiple,
            at most the group); ``seed`` seeds the ``random`` selection.
        ratio: a ratio to use instead of ``config.ratio`` (the latency-targeted selection searches it).

    Returns:
        Sorted kept indices for every group of ``scores``.
    """
    ranked = ranked_units(scores, config)
    return kept_units(ranked, keep_counts(ranked, scores, config, config.ratio if ratio is None else ratio))


def ranked_units(scores: Mapping[str, torch.Tensor], config: PruningConfig) -> dict[str, list[int]]:
    """Every group's unit indices from the one to keep first to the one to prune first (``config.selection``)."""
    return {name: _ranked(p) for name, p in priorities(scores, config.selection, config.seed).items()}


def keep_counts(ranked: Mapping[str, list[int]], scores: Mapping[str, torch.Tensor], config: PruningConfig,
                ratio: float) -> dict[str, int]:
    """How many units each group keeps at ``ratio`` by ``config.selection`` (rounded by ``config.round_to``)."""
    if config.selection.endswith('local'):
        counts = {name: len(r) - math.floor(len(r) * ratio) for name, r in ranked.items()}
    else:
        counts = _global_keep_counts(priorities(scores, config.selection, config.seed), ranked, ratio)
    if config.round_to is not None:
        counts = {name: _round_count(k, len(ranked[name]), config.round_to) for name, k in counts.items()}
    return counts


def kept_units(ranked: Mapping[str, list[int]], counts: Mapping[str, int]) -> dict[str, list[int]]:
    """The first ``counts[name]`` units of every group's ranking, sorted."""
    return {name: sorted(order[:counts[name]]) for name, order in ranked.items()}


def largest_ratio(ranked: Mapping[str, list[int]], config: PruningConfig) -> float:
    """The largest ratio the selection accepts: every group down to one unit (global: the protected top units)."""
    if config.selection.endswith('local'):
        return 1 - 1 / (2 * max(len(r) for r in ranked.values()))  # floor(n * ratio) = n - 1 for every group
    total = sum(len(r) for r in ranked.values())
    return (total - len(ranked)) / total


def _global_keep_counts(priorities, ranked, ratio: float) -> dict[str, int]:
    total = sum(len(r) for r in ranked.values())
    num_prune = math.floor(total * ratio)
    candidates = total - len(ranked)  # each group's top unit is protected
    if num_prune > candidates:
        raise ValueError(f'pruning.ratio {ratio} would empty a layer: with one unit kept in each of the '
                         f'{len(ranked)} groups at most {candidates / total:.4f} of the {total} units can be pruned.')
    pool = [(priorities[name][i].item(), group, rank) for group, (name, r) in enumerate(ranked.items())
            for rank, i in enumerate(r) if rank > 0]
    pool.sort()
    names = list(ranked)
    pruned_per_group = {name: 0 for name in ranked}
    for _, group, _ in pool[:num_prune]:
        pruned_per_group[names[group]] += 1
    return {name: len(r) - pruned_per_group[name] for name, r in ranked.items()}


def _round_count(count: int, size: int, multiple: int) -> int:
    if size <= multiple:
        return size
    rounded = math.floor(count / multiple + 0.5) * multiple
    return min(size, max(multiple, rounded))
