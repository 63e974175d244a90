"""NTIRE efficient-SR ranking: each model's ranks on the efficiency metrics, summed (lower is better).

As in the challenge, PSNR and #conv are not ranked; ties share the best rank (1, 2, 2, 4).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

#: Ranked metrics (lower is better): name -> key path in a profile result (see ``effsr_core.profiling.profiler``).
NTIRE_METRICS: dict[str, tuple[str, ...]] = {
    'runtime': ('runtime', 'best_ms'),
    'params': ('params', 'counted'),
    'flops': ('ops', 'counted', 'ntire_flops'),
    'activations': ('ops', 'counted', 'activations'),
    'memory': ('memory', 'peak_bytes'),
}


@dataclass(frozen=True)
class Ranking:
    """Per-metric ranks and their sums.

    Attributes:
        metrics: Metrics ranked (those every result has).
        ranks: Rank of each model on each metric, by model name.
        scores: Sum of each model's ranks, best (lowest) first.
    """
    metrics: list[str]
    ranks: dict[str, dict[str, int]]
    scores: dict[str, int]


def competition_ranks(values: Mapping[str, float]) -> dict[str, int]:
    """Rank values, lowest first; equal values share the best rank ('1224' ranking).

    Args:
        values: Metric value by model name.

    Returns:
        Rank by model name (1 is best).
    """
    return {name: 1 + sum(other < value for other in values.values()) for name, value in values.items()}


def lookup(result: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` in nested dicts, or None where a key is missing or None."""
    value: Any = result
    for key in path:
        if not isinstance(value, Mapping) or value.get(key) is None:
            return None
        value = value[key]
    return value


def rank_models(results: Mapping[str, Mapping[str, Any]],
                metrics: Mapping[str, tuple[str, ...]] = NTIRE_METRICS) -> Ranking:
    """Rank profile results by the NTIRE sum of per-metric ranks.

    Args:
        results: Profile result dicts by model name.
        metrics: Metric name -> key path in a result; lower is better for each. A metric missing from any result
            (e.g. runtime not measured) is not ranked.

    Returns:
        Ranks, rank sums (best first) and the metrics used.
    """
    used = [name for name, path in metrics.items()
            if all(lookup(result, path) is not None for result in results.values())]
    ranks: dict[str, dict[str, int]] = {model: {} for model in results}
    for metric in used:
        values = {model: lookup(result, metrics[metric]) for model, result in results.items()}
        for model, rank in competition_ranks(values).items():
            ranks[model][metric] = rank
    sums = {model: sum(model_ranks.values()) for model, model_ranks in ranks.items()}
    return Ranking(metrics=used, ranks=ranks, scores=dict(sorted(sums.items(), key=lambda item: item[1])))


def format_ranking(ranking: Ranking) -> str:
    """Text table of the ranking, best first: one row per model, one column per metric and the sum."""
    header = ['model', *ranking.metrics, 'sum']
    rows = [[model, *(str(ranking.ranks[model][metric]) for metric in ranking.metrics), str(score)]
            for model, score in ranking.scores.items()]
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]
    lines = ('  '.join(cell.ljust(width) for cell, width in zip(row, widths)) for row in (header, *rows))
    return '\n'.join(line.rstrip() for line in lines)
