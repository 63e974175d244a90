"""Compare runs of ``benchmarks/ssl_efficiency.py`` made by two versions of the tree on one machine, in one sitting
(e.g. before and after a refactoring that must not change speed): per network and memory format, the median over
the runs of each version's median runtime, and their ratio. Runs of the two versions should alternate.

    python benchmarks/compare_ssl_efficiency.py --before B1.json B2.json --after A1.json A2.json \
        --out benchmarks/results/NAME      # writes NAME.json and NAME.md
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from training_runs import write_report_files

FORMATS = ('nchw', 'channels_last')


def _runs(paths: list[str], parser: argparse.ArgumentParser, option: str) -> list[dict]:
    runs = []
    for path in paths:
        try:
            report = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            parser.error(f'argument {option}: {path}: {error}')
        if not isinstance(report, dict) or 'networks' not in report or 'spynet_runtime' not in report:
            parser.error(f'argument {option}: {path} is not a result of benchmarks/ssl_efficiency.py')
        runs.append(report)
    return runs


def _median_ms(runs: list[dict], network: str, fmt: str) -> float:
    return statistics.median(run['networks'][network]['runtime_without_spynet'][fmt]['median_ms'] for run in runs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--before', nargs='+', required=True, metavar='JSON', help='runs of the earlier version')
    parser.add_argument('--after', nargs='+', required=True, metavar='JSON', help='runs of the later version')
    parser.add_argument('--out', required=True, help='results path without suffix')
    args = parser.parse_args(argv)
    before, after = _runs(args.before, parser, '--before'), _runs(args.after, parser, '--after')
    networks = list(before[0]['networks'])
    if any(list(run['networks']) != networks for run in before + after):
        parser.error('argument --after: the runs do not time the same networks')
    rows = {name: {fmt: {'before_ms': _median_ms(before, name, fmt), 'after_ms': _median_ms(after, name, fmt)}
                   for fmt in FORMATS} for name in networks}
    for name in networks:
        for fmt in FORMATS:
            rows[name][fmt]['after_over_before'] = rows[name][fmt]['after_ms'] / rows[name][fmt]['before_ms']
    report = {'machine': before[0]['machine'], 'command': [sys.executable, *sys.argv],
              'before': args.before, 'after': args.after,
              'run_commands': {'before': before[0]['command'], 'after': after[0]['command']}, 'networks': rows}
    write_report_files(Path(args.out), report, markdown)
    print(markdown(report))


def markdown(report: dict) -> str:
    m = report['machine']
    lines = [f'# SSL efficiency before / after, CPU ({m["cpu"]}, {m["threads"]} threads, torch {m["torch"]})', '',
             f'Command: `{" ".join(report["command"])}`  ',
             f'Runs: {len(report["before"])} before (`{" ".join(report["run_commands"]["before"])}`), '
             f'{len(report["after"])} after (`{" ".join(report["run_commands"]["after"])}`), alternating. '
             'Each figure: the median over the runs of the run\'s median ms per frame without SpyNet.', '',
             '| network | NCHW before | NCHW after | after / before | ch-last before | ch-last after | after / before |',
             '|---|---|---|---|---|---|---|']
    for name, row in report['networks'].items():
        cells = [f'{row[fmt]["before_ms"]:.0f} | {row[fmt]["after_ms"]:.0f} | {row[fmt]["after_over_before"]:.3f}'
                 for fmt in FORMATS]
        lines.append(f'| {name} | {" | ".join(cells)} |')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
