"""A picture of a profiler comparison: every model's costs divided by a baseline model's, and its PSNR difference.

Framework-free: it reads the result dicts of ``effsr_core.profiling.profiler`` (or a JSON report of
``python -m effsr_core.profile --json``) and draws through ``effsr_core.plotting`` (matplotlib imported only when a
picture is drawn). ``python -m effsr_core.profiling.plot REPORT.json --plot OUT.png [--plot-baseline NAME]`` redraws
a report without measuring anything again.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from effsr_core.command_line import check_output_file
from effsr_core.plotting import figure
from effsr_core.profiling.ranking import lookup


def _in(scale: float, unit: str) -> Callable[[float], str]:
    """Formats a value divided by ``scale`` with 3 significant digits (all digits from 100 up) and ``unit``."""
    def format_value(value: float) -> str:
        value /= scale
        return f'{value:.0f} {unit}' if abs(value) >= 100 else f'{value:.3g} {unit}'
    return format_value


#: Cost measures (lower is better), drawn as model / baseline: label, key path in a result, the baseline's value
#: in words (written under the label).
COST_MEASURES: tuple[tuple[str, tuple[str, ...], Callable[[float], str]], ...] = (
    ('runtime', ('runtime', 'median_ms'), _in(1, 'ms')),
    ('predicted runtime', ('predicted', 'ms'), _in(1, 'ms')),
    ('params', ('params', 'counted'), _in(1e6, 'M')),
    ('MACs', ('ops', 'counted', 'macs'), _in(1e9, 'G')),
    ('activations', ('ops', 'counted', 'activations'), _in(1e6, 'M')),
    ('peak memory', ('memory', 'peak_bytes'), _in(2 ** 20, 'MiB')),
)
PSNR_PATH = ('quality', 'psnr')
#: Ratios the log axis may mark (those inside its limits are), and finer ones for a narrow range.
RATIO_TICKS = tuple(mantissa * 10.0 ** exponent for exponent in range(-4, 5) for mantissa in (1, 2, 5))
FINE_RATIO_TICKS = tuple(mantissa * 10.0 ** exponent for exponent in range(-4, 5)
                         for mantissa in (1, 1.5, 2, 3, 5, 7))


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None (missing, not a number, inf or nan)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _baseline(results: Mapping[str, Mapping[str, Any]], baseline: str | None) -> str:
    """The baseline's name: ``baseline``, or the first model; ValueError naming the models when unknown."""
    if not results:
        raise ValueError('no results to compare')
    if baseline is None:
        return next(iter(results))
    if baseline not in results:
        raise ValueError(f'no model is named {baseline!r} (models: {", ".join(results)})')
    return baseline


def normalised_measures(results: Mapping[str, Mapping[str, Any]],
                        baseline: str | None = None) -> dict[str, dict[str, float | None]]:
    """Every model's cost measures divided by the baseline model's.

    Args:
        results: Profile result dicts by model name (``effsr_core.profiling.profiler.profile_model``).
        baseline: The model everything is divided by (default: the first).

    Returns:
        Measure label (``COST_MEASURES``, in that order) -> model -> model / baseline (1.0 for the baseline; None
        for a model without that measure). A measure the baseline lacks (or has as 0) is left out, so is one no
        model has.

    Raises:
        ValueError: ``baseline`` names no model, or ``results`` is empty.
    """
    base = results[_baseline(results, baseline)]
    measures = {}
    for label, path, _ in COST_MEASURES:
        reference = _number(lookup(base, path))
        if not reference:
            continue
        values = {name: _number(lookup(result, path)) for name, result in results.items()}
        measures[label] = {name: None if value is None else value / reference for name, value in values.items()}
    return measures


def psnr_differences(results: Mapping[str, Mapping[str, Any]], baseline: str | None = None) -> dict[str, float | None]:
    """Every model's PSNR minus the baseline model's, in dB (0.0 for the baseline, None for a model without PSNR);
    empty when the baseline has no PSNR. Raises ValueError as ``normalised_measures``."""
    reference = _number(lookup(results[_baseline(results, baseline)], PSNR_PATH))
    if reference is None:
        return {}
    values = {name: _number(lookup(result, PSNR_PATH)) for name, result in results.items()}
    return {name: None if value is None else value - reference for name, value in values.items()}


def format_ratio(ratio: float) -> str:
    """A ratio as a bar label: '0.42x', '12x', '0.042x'."""
    if ratio >= 10:
        return f'{ratio:.0f}x'
    if ratio >= 0.1:
        return f'{ratio:.2f}x'
    return f'{ratio:.2g}x'


def _input_size(shape: Sequence[int]) -> str:
    """A result's ``input_shape`` in words: '3x256x256' (image), '10 frames of 3x180x320' (video)."""
    if len(shape) == 5:
        return f'{shape[1]} frames of {"x".join(map(str, shape[2:]))}'
    return 'x'.join(map(str, shape[1:] if len(shape) == 4 else shape))


def _one_or_each(values: Mapping[str, str | None]) -> str | None:
    """The one value all models share, or 'model: value' for each; None when no model has one."""
    known = {name: value for name, value in values.items() if value is not None}
    if not known:
        return None
    if len(set(known.values())) == 1:
        return next(iter(known.values()))
    return ', '.join(f'{name}: {value}' for name, value in known.items())


def describe_setting(results: Mapping[str, Mapping[str, Any]]) -> str:
    """The input size, device, threads and backend of the runs, e.g. 'input 3x256x256; Intel Xeon, 2 threads'."""
    def each(read: Callable[[Mapping[str, Any]], Any]) -> str | None:
        return _one_or_each({name: None if (value := read(result)) is None else str(value)
                             for name, result in results.items()})

    size = each(lambda result: None if not isinstance(shape := result.get('input_shape'), (list, tuple))
                else _input_size(shape))
    device = each(lambda result: lookup(result, ('runtime', 'device_name')) or result.get('device'))
    threads = each(lambda result: lookup(result, ('runtime', 'threads')))
    backend = each(lambda result: lookup(result, ('backend', 'name')))
    parts = [f'input {size}' if size else None,
             ', '.join(part for part in (device, threads and f'{threads} threads') if part) or None,
             f'backend {backend}' if backend and backend != 'eager' else None]
    return '; '.join(part for part in parts if part)


def _colours(names: Sequence[str]) -> dict[str, str]:
    """One colour per compared model, the same in both panels."""
    return {name: f'C{index % 10}' for index, name in enumerate(names)}


def _draw_costs(ax: Any, results: Mapping[str, Mapping[str, Any]], base: str, compared: Sequence[str],
                colours: Mapping[str, str]) -> None:
    """Grouped bars from 1 to model / baseline on a log scale, one group per measure."""
    measures = normalised_measures(results, base)
    ax.axhline(1.0, color='0.3', linewidth=1)
    ax.set_yscale('log')
    ax.set_ylabel(f'model / {base} (log scale)')
    ax.set_title(f'cost / {base}, lower is better ({base}\'s values under the measures)', fontsize=10)
    if not measures:
        ax.text(0.5, 0.5, f'{base} has no cost measure to divide by', ha='center', va='center',
                transform=ax.transAxes)
        ax.set_xticks([])
        return
    width = 0.8 / len(compared)
    rotation = 90 if len(compared) >= 3 else 0
    drawn, labelled = [1.0], set()
    for index, name in enumerate(compared):
        for group, ratios in enumerate(measures.values()):
            ratio = ratios[name]
            x = group - 0.4 + width * (index + 0.5)
            if ratio is None or ratio <= 0:
                ax.text(x, 1.0, 'n/a' if ratio is None else '0x', ha='center', va='bottom', fontsize=7,
                        rotation=rotation)
                continue
            drawn.append(ratio)
            ax.bar(x, ratio - 1.0, bottom=1.0, width=width * 0.92, color=colours[name],
                   label=None if name in labelled else name)
            labelled.add(name)
            ax.text(x, ratio, f' {format_ratio(ratio)} ' if rotation else format_ratio(ratio), ha='center',
                    va='bottom' if ratio >= 1 else 'top', fontsize=7, rotation=rotation)
    low, high = min(drawn), max(drawn)
    pad = (high / low) ** 0.18 * (2.2 if rotation else 1.5)  # room for the labels in log space
    ax.set_ylim(low / pad, high * pad)
    ticks = [tick for tick in RATIO_TICKS if low / pad <= tick <= high * pad]
    if len(ticks) < 4:
        ticks = [tick for tick in FINE_RATIO_TICKS if low / pad <= tick <= high * pad]
    ax.set_yticks(ticks, [f'{tick:g}x' for tick in ticks])
    ax.set_yticks([], minor=True)
    base_result = results[base]
    ax.set_xticks(range(len(measures)))
    ax.set_xticklabels([f'{label}\n{describe(lookup(base_result, path))}'
                        for label, path, describe in COST_MEASURES if label in measures], fontsize=8)
    ax.set_xlim(-0.6, len(measures) - 0.4)
    ax.grid(axis='y', which='major', color='0.9', linewidth=0.8)
    ax.set_axisbelow(True)


def _draw_psnr(ax: Any, differences: Mapping[str, float | None], base: str, reference: float,
               compared: Sequence[str], colours: Mapping[str, str]) -> None:
    """One bar per compared model: its PSNR minus the baseline's, with a line at 0."""
    ax.axhline(0.0, color='0.3', linewidth=1)
    values = [value for name in compared if (value := differences.get(name)) is not None]
    for index, name in enumerate(compared):
        value = differences.get(name)
        if value is None:
            ax.text(index, 0.0, 'n/a', ha='center', va='bottom', fontsize=7)
            continue
        ax.bar(index, value, width=0.7, color=colours[name])
        ax.text(index, value, f'{value:+.2f} dB', ha='center', va='bottom' if value >= 0 else 'top', fontsize=7)
    extent = max([abs(value) for value in values] + [0.05])
    ax.set_ylim(min(0.0, *values) - 0.25 * extent, max(0.0, *values) + 0.25 * extent)
    ax.set_xticks(range(len(compared)))
    ax.set_xticklabels(compared, fontsize=8, rotation=30 if len(compared) >= 3 else 0,
                       ha='right' if len(compared) >= 3 else 'center')
    ax.set_xlim(-0.6, len(compared) - 0.4)
    ax.set_ylabel(f'PSNR - {base} [dB]')
    ax.set_title(f'PSNR ({base}: {reference:.2f} dB)', fontsize=10)
    ax.grid(axis='y', color='0.9', linewidth=0.8)
    ax.set_axisbelow(True)


def plot_comparison(results: Mapping[str, Mapping[str, Any]], png_path: str | Path, baseline: str | None = None) -> str:
    """Write a PNG of the models' costs divided by the baseline's (and their PSNR difference to it, when measured).

    Args:
        results: Profile result dicts by model name, two models or more.
        png_path: The picture, replaced atomically.
        baseline: The model everything is divided by (default: the first); it is the line at 1 (and at 0 dB).

    Returns:
        ``png_path`` as a string.

    Raises:
        ValueError: ``baseline`` names no model, or fewer than two models are given.
    """
    base = _baseline(results, baseline)
    compared = [name for name in results if name != base]
    if not compared:
        raise ValueError('a comparison needs two models or more')
    colours = _colours(compared)
    measures = normalised_measures(results, base)
    differences = psnr_differences(results, base)
    psnr = bool(differences) and any(differences[name] is not None for name in compared)
    cost_width = max(5.0, 1.0 + len(measures) * (0.5 + 0.22 * len(compared)))
    panels = [cost_width, max(2.8, 1.4 + 0.45 * len(compared))] if psnr else [cost_width]
    with figure(png_path, 1, len(panels), squeeze=False, figsize=(sum(panels) + 0.6, 4.8), dpi=120,
                gridspec_kw={'width_ratios': panels}) as (fig, axes):
        _draw_costs(axes[0][0], results, base, compared, colours)
        if psnr:
            _draw_psnr(axes[0][1], differences, base, lookup(results[base], PSNR_PATH), compared, colours)
        handles, labels = axes[0][0].get_legend_handles_labels()
        if handles:
            axes[0][0].legend(handles, labels, fontsize=8, loc='best', framealpha=0.85)
        setting = describe_setting(results)
        fig.suptitle(f'{", ".join(compared)} against {base}' + (f'\n{setting}' if setting else ''), fontsize=10)
    return str(png_path)


def baseline_problem(names: Sequence[str], baseline: str | None) -> str | None:
    """Why ``baseline`` cannot be the plot's baseline among the models ``names``, or None when it can."""
    if baseline is not None and baseline not in names:
        return f'no model is named {baseline!r} (models: {", ".join(names)})'
    return None


def _read_results(parser: argparse.ArgumentParser, path: str) -> dict[str, Mapping[str, Any]]:
    """The ``results`` of a profiler JSON report; bad input ends in one line naming REPORT."""
    try:
        report = json.loads(Path(path).read_text())
    except FileNotFoundError:
        parser.error(f'argument REPORT: no such file {path!r}')
    except (OSError, UnicodeDecodeError, ValueError) as error:
        parser.error(f'argument REPORT: cannot read {path!r} as JSON ({error})')
    results = report.get('results') if isinstance(report, Mapping) else None
    if not isinstance(results, Mapping) or not all(isinstance(result, Mapping) for result in results.values()):
        parser.error(f"argument REPORT: {path!r} is not a profiler report (no 'results' mapping of models; "
                     f'write one with python -m effsr_core.profile --json)')
    return dict(results)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the redraw command line."""
    parser = argparse.ArgumentParser(prog='python -m effsr_core.profiling.plot', description=__doc__.split('\n')[0])
    parser.add_argument('report', metavar='REPORT', help='a JSON report of python -m effsr_core.profile --json')
    parser.add_argument('--plot', required=True, metavar='FILE.png', help='the picture to write')
    parser.add_argument('--plot-baseline', metavar='NAME', help='the model everything is divided by (default: the '
                                                                'first of the report)')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Redraw the comparison of a profiler JSON report; bad input exits with status 2 and one line naming it."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check_output_file(parser, '--plot', args.plot, '.png')
    results = _read_results(parser, args.report)
    if len(results) < 2:
        parser.error(f'argument REPORT: {args.report!r} holds {len(results)} model(s); a comparison needs two or more')
    problem = baseline_problem(list(results), args.plot_baseline)
    if problem:
        parser.error(f'argument --plot-baseline: {problem}')
    plot_comparison(results, args.plot, args.plot_baseline)
    print(f'Wrote {args.plot}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
