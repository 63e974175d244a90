"""NTIRE 2024-2026 efficient-SR score: weighted exponentials of runtime, FLOPs and parameters relative to a baseline.

Protocol of the challenge repositories' READMEs (section "How the Ranking Strategy Works?"):

* a model whose PSNR is below the threshold (26.90 dB on DIV2K_LSDIR valid, 26.99 dB on DIV2K_LSDIR test, the
  same in the three years) is excluded from the ranking;
* each remaining model gets ``Score_k = exp(2 * x_k / x_k_baseline)`` for runtime, FLOPs (fvcore, at 1x3x256x256)
  and parameters, and ``Score_Final = sum_k w_k * Score_k``; lower is better. The baseline itself scores
  ``exp(2) = 7.3891`` on each term and, the weights summing to 1, in total.

Sources (read for the constants; no code taken from them):

* 2024: github.com/Amazingren/NTIRE2024_ESR, README.md (commit 021da76): baseline RLFN, 13.54 ms (RTX 3090),
  0.317 M params, 19.70 G FLOPs; weights 0.7 / 0.15 / 0.15. Copies of an earlier README version (e.g.
  jiwon1513/EffiRes_Ntire2024esr, README.md) give 19.67 G FLOPs; 19.70 G is the figure of the official repository's
  score example.
* 2025: github.com/Amazingren/NTIRE2025_ESR, README.md (commit 0b5be94): baseline EFDN, 16.69 ms (RTX A6000),
  0.276 M params, 16.70 G FLOPs; weights 0.7 / 0.15 / 0.15.
* 2026: github.com/Amazingren/NTIRE2026_ESR, README.md (commit 12df396): baseline SPAN, 5.59 ms (RTX A6000),
  0.151 M params, 9.83 G FLOPs; weights 0.8 / 0.1 / 0.1.

The official runtimes were measured on those GPUs (average of 5 runs over the validation and test images); compared
with a runtime measured elsewhere they say little, hence ``baseline_model``: one of the profiled models (e.g. the
year's baseline architecture) serves as the baseline with its own figures measured on the same machine.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from effsr_core.profiling.ranking import lookup

#: The scored figures: name -> (key path in a profile result, divisor to the unit of the official figures).
#: Runtime is the median of the trials (the challenge averages 5 runs), FLOPs the fvcore count, params those outside
#: any excluded sub-module (all of them for image models).
FIGURES: dict[str, tuple[tuple[str, ...], float]] = {
    'runtime_ms': (('runtime', 'median_ms'), 1.0),
    'flops_g': (('ops', 'counted', 'fvcore_flops'), 1e9),
    'params_m': (('params', 'counted'), 1e6),
}


@dataclass(frozen=True)
class Protocol:
    """One year's scoring rules.

    Attributes:
        year: Challenge year.
        baseline: Name of the official baseline model.
        runtime_ms: Official baseline runtime (ms, on ``gpu``).
        flops_g: Official baseline fvcore FLOPs at 1x3x256x256 (G).
        params_m: Official baseline parameters (M).
        weights: Weight of each term, keyed like ``FIGURES``.
        psnr_valid_db: PSNR threshold on DIV2K_LSDIR valid.
        psnr_test_db: PSNR threshold on DIV2K_LSDIR test.
        gpu: GPU of the official runtimes.
        source: Repository and file the constants come from.
    """
    year: int
    baseline: str
    runtime_ms: float
    flops_g: float
    params_m: float
    weights: dict[str, float]
    psnr_valid_db: float
    psnr_test_db: float
    gpu: str
    source: str

    def baseline_figures(self) -> dict[str, float]:
        """The official baseline figures, keyed like ``FIGURES``."""
        return {'runtime_ms': self.runtime_ms, 'flops_g': self.flops_g, 'params_m': self.params_m}


PROTOCOLS: dict[str, Protocol] = {
    'ntire2024': Protocol(2024, 'RLFN', 13.54, 19.70, 0.317, {'runtime_ms': 0.7, 'flops_g': 0.15, 'params_m': 0.15},
                          26.90, 26.99, 'NVIDIA GeForce RTX 3090', 'Amazingren/NTIRE2024_ESR README.md'),
    'ntire2025': Protocol(2025, 'EFDN', 16.69, 16.70, 0.276, {'runtime_ms': 0.7, 'flops_g': 0.15, 'params_m': 0.15},
                          26.90, 26.99, 'NVIDIA RTX A6000', 'Amazingren/NTIRE2025_ESR README.md'),
    'ntire2026': Protocol(2026, 'SPAN', 5.59, 9.83, 0.151, {'runtime_ms': 0.8, 'flops_g': 0.1, 'params_m': 0.1},
                          26.90, 26.99, 'NVIDIA RTX A6000', 'Amazingren/NTIRE2026_ESR README.md'),
}


def model_figures(result: Mapping[str, Any]) -> dict[str, float]:
    """Runtime (ms), fvcore FLOPs (G) and params (M) of one profile result.

    Raises:
        ValueError: A figure was not measured (e.g. ``--skip runtime``).
    """
    figures = {}
    for name, (path, divisor) in FIGURES.items():
        value = lookup(result, path)
        if value is None:
            raise ValueError(f'{name} was not measured ({".".join(path)} is missing)')
        figures[name] = value / divisor
    return figures


def score_terms(figures: Mapping[str, float], baseline: Mapping[str, float],
                weights: Mapping[str, float]) -> dict[str, float]:
    """``exp(2 * x / x_baseline)`` of each weighted figure.

    Raises:
        ValueError: A baseline figure is not positive.
    """
    terms = {}
    for name in weights:
        if not baseline[name] > 0:
            raise ValueError(f'baseline {name} must be positive, got {baseline[name]}')
        terms[name] = math.exp(2 * figures[name] / baseline[name])
    return terms


def final_score(terms: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """``sum_k w_k * terms[k]`` (lower is better)."""
    return sum(weights[name] * terms[name] for name in weights)


@dataclass(frozen=True)
class ModelScore:
    """One model's score.

    Attributes:
        figures: Its runtime_ms, flops_g, params_m.
        terms: ``exp(2 * x / x_baseline)`` per figure.
        score: Weighted sum of the terms (lower is better).
        psnr: Its PSNR (dB) when a dataset was given, else None.
        meets_threshold: PSNR >= the year's threshold; None when no PSNR was measured.
        rank: Rank by score among the models not under the threshold (1 is best); None for those under it.
    """
    figures: dict[str, float]
    terms: dict[str, float]
    score: float
    psnr: float | None
    meets_threshold: bool | None
    rank: int | None


def score_models(results: Mapping[str, Mapping[str, Any]], protocol_name: str,
                 baseline_model: str | None = None) -> dict[str, Any]:
    """Score profile results by one year's protocol.

    Args:
        results: Profile results by model name.
        protocol_name: Key of ``PROTOCOLS``.
        baseline_model: A key of ``results`` whose measured figures are the baseline; None for the official ones.

    Returns:
        A JSON-ready dict: protocol, year, formula, weights, baseline (name, source, figures), PSNR threshold and the
        per-model ``ModelScore`` fields, models best first.

    Raises:
        KeyError: Unknown protocol or baseline model.
        ValueError: A figure is missing, or a baseline figure is not positive.
    """
    protocol = PROTOCOLS[protocol_name]
    if baseline_model is None:
        baseline = {'name': protocol.baseline, 'official': True,
                    'measured_on': f'{protocol.gpu} (official figures, {protocol.source})',
                    'figures': protocol.baseline_figures()}
    else:
        baseline = {'name': baseline_model, 'official': False, 'measured_on': 'this machine (profiled model)',
                    'figures': model_figures(results[baseline_model])}
    scored = {}
    for name, result in results.items():
        figures = model_figures(result)
        terms = score_terms(figures, baseline['figures'], protocol.weights)
        psnr = lookup(result, ('quality', 'psnr'))
        meets = None if psnr is None else psnr >= protocol.psnr_valid_db
        scored[name] = ModelScore(figures, terms, final_score(terms, protocol.weights), psnr, meets, None)
    ranked = sorted((name for name, item in scored.items() if item.meets_threshold is not False),
                    key=lambda name: scored[name].score)
    ranks = {name: 1 + sum(scored[other].score < scored[name].score for other in ranked) for name in ranked}
    order = [*ranked, *(name for name in scored if name not in ranks)]
    return {
        'protocol': protocol_name,
        'year': protocol.year,
        'formula': 'sum_k w_k * exp(2 * x_k / x_k_baseline), lower is better',
        'weights': dict(protocol.weights),
        'baseline': baseline,
        'psnr_threshold_db': protocol.psnr_valid_db,
        'psnr_threshold_set': 'DIV2K_LSDIR valid (test: %.2f dB)' % protocol.psnr_test_db,
        'models': {name: asdict(ModelScore(**{**asdict(scored[name]), 'rank': ranks.get(name)})) for name in order},
    }


def format_scores(section: Mapping[str, Any]) -> str:
    """Text table of a ``score_models`` section: one row per model, best first; models under the threshold last."""
    header = ['model', 'runtime term', 'FLOPs term', 'params term', 'score', 'PSNR', 'rank']
    rows = []
    for name, item in section['models'].items():
        psnr = 'n/a' if item['psnr'] is None else f'{item["psnr"]:.2f}' + ('' if item['meets_threshold'] else ' <')
        rows.append([name, *(f'{item["terms"][key]:.4f}' for key in FIGURES), f'{item["score"]:.4f}', psnr,
                     'not ranked' if item['rank'] is None else str(item['rank'])])
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]
    lines = ['  '.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in (header, *rows)]
    return '\n'.join(lines)


def describe(section: Mapping[str, Any]) -> str:
    """One line naming the protocol, the baseline and its figures, the weights and the PSNR threshold."""
    figures = section['baseline']['figures']
    weights = section['weights']
    return (f'NTIRE {section["year"]} score (lower is better; baseline {section["baseline"]["name"]}, '
            f'{section["baseline"]["measured_on"]}: {figures["runtime_ms"]:.2f} ms, {figures["flops_g"]:.2f} G fvcore '
            f'FLOPs, {figures["params_m"]:.3f} M params; weights runtime {weights["runtime_ms"]:g}, FLOPs '
            f'{weights["flops_g"]:g}, params {weights["params_m"]:g}; models under {section["psnr_threshold_db"]:.2f} '
            f'dB PSNR are not ranked):')
