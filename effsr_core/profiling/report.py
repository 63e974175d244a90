"""Profiling report: a text table (one column per model) and a JSON file with the machine, command and numbers."""
from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from effsr_core.profiling.ranking import Ranking, lookup
from effsr_core.profiling.timing import cpu_model_name


def machine_info() -> dict[str, Any]:
    """CPU model, core count, GPU (if any), Python / torch versions and torch's thread count."""
    return {
        'cpu': cpu_model_name(),
        'cores': os.cpu_count(),
        'gpu': torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        'platform': platform.platform(),
        'python': platform.python_version(),
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
    }


def build_report(results: Mapping[str, Mapping[str, Any]], ranking: Ranking | None = None,
                 argv: Sequence[str] | None = None, score: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Collect everything that the JSON file holds.

    Args:
        results: Profile results by model name (``effsr_core.profiling.profiler.profile_model``).
        ranking: NTIRE ranking of the results, if computed.
        argv: Command line (default: ``sys.argv``).
        score: NTIRE 2024-2026 score section (``effsr_core.profiling.scoring.score_models``), if computed.

    Returns:
        A JSON-ready dict with ``machine``, ``command``, ``results``, ``versus_first`` (speed-up, MAC reduction and
        prediction error against the first model), ``ranking`` and ``score``.
    """
    return {
        'machine': machine_info(),
        'command': list(sys.argv if argv is None else argv),
        'results': {name: dict(result) for name, result in results.items()},
        'versus_first': versus_first(results) if results else None,
        'ranking': asdict(ranking) if ranking else None,
        'score': dict(score) if score else None,
    }


def write_json(report: Mapping[str, Any], path: str | Path) -> None:
    """Write ``report`` as indented JSON (creating parent folders)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + '\n')


def read_json(path: str | Path) -> dict[str, Any]:
    """Read a report written by ``write_json``."""
    return json.loads(Path(path).read_text())


def _scaled(scale: float, digits: int) -> Callable[[Any], str]:
    return lambda value: f'{value / scale:.{digits}f}'


def _per_module(scale: float, digits: int, key: str | None = None) -> Callable[[Any], str]:
    """Formats an ``{excluded module: count or counts[key]}`` dict as ``name=value`` items (``-`` when empty)."""
    def format_value(excluded: Mapping[str, Any]) -> str:
        values = {name: counts if key is None else counts[key] for name, counts in excluded.items()}
        return ', '.join(f'{name}={value / scale:.{digits}f}' for name, value in values.items()) or '-'
    return format_value


#: Table rows: label, key path in a result, formatter.
TABLE_ROWS: tuple[tuple[str, tuple[str, ...], Callable[[Any], str]], ...] = (
    ('checkpoint', ('checkpoint',), lambda path: Path(path).name),
    ('input shape', ('input_shape',), lambda shape: 'x'.join(map(str, shape))),
    ('frames per forward', ('ops', 'frames'), str),
    ('params [M]', ('params', 'counted'), _scaled(1e6, 3)),
    ('excluded params [M]', ('params', 'excluded'), _per_module(1e6, 3)),
    ('MACs [G]', ('ops', 'counted', 'macs'), _scaled(1e9, 2)),
    ('FLOPs [G] (torch, 2/MAC)', ('ops', 'counted', 'flops'), _scaled(1e9, 2)),
    ('NTIRE FLOPs [G]', ('ops', 'counted', 'ntire_flops'), _scaled(1e9, 2)),
    ('fvcore FLOPs [G] (1/MAC)', ('ops', 'counted', 'fvcore_flops'), _scaled(1e9, 2)),
    ('activations [M]', ('ops', 'counted', 'activations'), _scaled(1e6, 2)),
    ('#conv', ('ops', 'counted', 'num_conv'), lambda value: f'{value:g}'),
    ('excluded MACs [G]', ('ops', 'excluded'), _per_module(1e9, 2, 'macs')),
    ('ops counted on', ('ops', 'counted_on'), str),
    ('backend', ('backend', 'name'), str),
    ('peak memory [MiB]', ('memory', 'peak_bytes'), _scaled(2 ** 20, 2)),
    ('runtime best [ms]', ('runtime', 'best_ms'), _scaled(1, 2)),
    ('runtime median [ms]', ('runtime', 'median_ms'), _scaled(1, 2)),
    ('predicted runtime [ms]', ('predicted', 'ms'), _scaled(1, 2)),
    ('runtime device', ('runtime', 'device_name'), str),
    ('threads', ('runtime', 'threads'), str),
    ('PSNR [dB]', ('quality', 'psnr'), _scaled(1, 2)),
    ('SSIM', ('quality', 'ssim'), _scaled(1, 4)),
)


def versus_first(results: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per model against the first one: measured speed-up (median runtime), MAC reduction, and the cost model's
    error (predicted / measured - 1) where both were taken."""
    first = next(iter(results.values()))
    base_ms, base_macs = lookup(first, ('runtime', 'median_ms')), lookup(first, ('ops', 'counted', 'macs'))
    rows = {}
    for name, result in results.items():
        ms, macs = lookup(result, ('runtime', 'median_ms')), lookup(result, ('ops', 'counted', 'macs'))
        predicted = lookup(result, ('predicted', 'ms'))
        rows[name] = {'speedup': base_ms / ms if base_ms and ms else None,
                      'mac_reduction': base_macs / macs if base_macs and macs else None,
                      'prediction_error': predicted / ms - 1 if predicted and ms else None}
    return rows


def format_versus_first(results: Mapping[str, Mapping[str, Any]]) -> str:
    """The speed-up next to the MAC reduction (and the prediction's error) of every model against the first."""
    first = next(iter(results))
    show = lambda value, spec: 'n/a' if value is None else format(value, spec)  # noqa: E731
    lines = [f'Against {first}: speed-up (median runtime) | MAC reduction | predicted / measured - 1']
    for name, row in versus_first(results).items():
        lines.append(f'  {name}: {show(row["speedup"], ".2f")}x | {show(row["mac_reduction"], ".2f")}x | '
                     f'{show(None if row["prediction_error"] is None else 100 * row["prediction_error"], "+.1f")}%')
    return '\n'.join(lines)


def format_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """Text table of profile results: one row per measure, one column per model, notes on conventions below.

    Args:
        results: Profile results by model name.

    Returns:
        The table (``n/a`` where a measure was not taken).
    """
    header = ['', *results]
    rows = [[label, *(('n/a' if (value := lookup(result, path)) is None else format_value(value))
                      for result in results.values())]
            for label, path, format_value in TABLE_ROWS]
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]
    lines = ['  '.join(cell.rjust(width) if column else cell.ljust(width)
                       for column, (cell, width) in enumerate(zip(row, widths))) for row in (header, *rows)]
    notes = ['Ops and runtimes are per output frame (divided by "frames per forward"); excluded sub-modules are '
             'counted apart.',
             'NTIRE FLOPs = conv MACs + conv bias elements + activation-op elements; activations = conv output '
             'elements.',
             'fvcore FLOPs (NTIRE 2024-2026) = one per multiply-add of the ops fvcore has a handler for (conv, '
             'linear/matmul, norms, upsampling, adaptive average pool, grid sample); others skipped.']
    methods = {memory['method'] for result in results.values() if (memory := result.get('memory'))}
    notes += [f'Peak memory: {method}.' for method in sorted(methods)]
    backends: dict[str, float] = {}
    for result in results.values():
        if (backend := result.get('backend')) and backend['name'] != 'eager':
            backends[backend['description']] = max(backends.get(backend['description'], 0.0),
                                                   backend['max_relative_difference'])
    notes += [f'Backend: {description}; largest max |difference| / max |output| from eager {difference:.1e}.'
              for description, difference in sorted(backends.items())]
    return '\n'.join(lines + [''] + notes)
