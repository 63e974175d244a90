"""Multigrid's headline claim at small scale: the fixed-size baseline's quality in a fraction of its wall-clock.

A reduced BasicVSR (BasicSR's arch, 32 channels, 4 blocks: the network of ``ssl_quality.py``'s pretraining, which
passes the bilinear skip only after a few hundred iterations; batch 2) trains from scratch on the bundled
clips (BI x4) through BasicSR's own pipeline, long enough that the baseline clearly beats the bilinear skip. The baseline (LR
32 x 6 frames, one cosine) and multigrid (S&T hierarchical 16/32 x 3/6 with Eq. 1, the paper's method) train at the
same batch for the same iterations; a checkpoint every ``--every`` iterations is scored afterwards (PSNR, RGB, no
crop, the first 30 frames of the four validation clips), so scoring takes no training time. Wall-clock of a
checkpoint: from BasicSR's 'Start training' log line to its 'Saving models' line.

Fair on a shared machine: the two runs of a seed train at the same time, each pinned to one of the two cores with
one torch thread (data-loader worker on the same core), the cores swapped from seed to seed; whatever else runs
slows both alike. The paper's ablations (S only, T only, synchronous, plain cosine) train in pairs the same way for
``--ablation-seeds``. Finished runs and scores in the work folder are reused.

    python benchmarks/multigrid_time_to_quality.py [--iters 1000] [--every 100] [--seeds 0 1 2]
        # writes benchmarks/results/multigrid_time_to_quality_cpu.{json,md,png}
    python benchmarks/multigrid_time_to_quality.py --redraw   # the PNG again from the committed JSON
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

from multigrid_quality import EVAL_FRAMES, SPATIAL, TEMPORAL, bilinear_reference, variant_options
from training_runs import REPO, launch, prepare_workdir, video_quality, wait, write_report_files

RESULTS = Path(__file__).parent / 'results'
BENCHMARK = 'multigrid_time_to_quality'
METHOD = 'S&T hierarchical'
NETWORK = {'num_feat': 32, 'num_block': 4}
ABLATIONS = ('S only', 'T only', 'S&T synchronous', 'S&T hierarchical, plain cosine')
WITHIN_DB = 0.05  # "reaches the baseline's final PSNR" means within this many dB of it
_LOG_TIME = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO: (Start training from|Saving models)')


def run_options(variant: str, seed: int, iters: int, every: int) -> dict:
    """The multigrid quality benchmark's options of ``variant`` with a checkpoint every ``every`` iterations."""
    opt = variant_options(variant, seed, iters)
    opt['network_g'].update(NETWORK)
    opt['logger'].update(save_checkpoint_freq=every, print_freq=every)
    return opt


def checkpoint_seconds(log_text: str, every: int) -> dict[int, float]:
    """Seconds from 'Start training' to each 'Saving models' line of a BasicSR log, by iteration (every, 2 every,
    ...)."""
    stamps = [(datetime.strptime(m.group(1), '%Y-%m-%d %H:%M:%S,%f'), m.group(2))
              for line in log_text.splitlines() if (m := _LOG_TIME.match(line))]
    starts = [stamp for stamp, what in stamps if what.startswith('Start')]
    if len(starts) != 1:
        raise ValueError(f'expected one "Start training" line, found {len(starts)} (a resumed or broken log)')
    saves = [stamp for stamp, what in stamps if what.startswith('Saving')]
    return {every * (k + 1): (stamp - starts[0]).total_seconds() for k, stamp in enumerate(saves)}


def curve(workdir: Path, opt: dict, every: int) -> list[dict]:
    """(iteration, seconds, PSNR, SSIM) of every saved checkpoint of a finished run, scored once and cached."""
    import json

    cached = workdir / f'{opt["name"]}.curve.json'
    if cached.exists():
        return json.loads(cached.read_text())
    options = workdir / f'{opt["name"]}.yml'
    models = workdir / 'experiments' / opt['name'] / 'models'
    points = []
    for iteration, seconds in checkpoint_seconds((workdir / f'{opt["name"]}.log').read_text(), every).items():
        quality = video_quality(models / f'net_g_{iteration}.pth', options, EVAL_FRAMES)[1]
        points.append({'iter': iteration, 'seconds': seconds, **quality})
    cached.write_text(json.dumps(points))
    return points


def jobs(args) -> list[tuple[tuple[str, int], ...]]:
    """Pairs of (variant, seed) trained side by side: baseline and the method per seed, then the ablations."""
    pairs = [(('baseline', seed), (METHOD, seed)) for seed in args.seeds]
    ablations = [(variant, seed) for seed in args.ablation_seeds for variant in ABLATIONS]
    pairs += [tuple(ablations[i:i + 2]) for i in range(0, len(ablations), 2)]
    return pairs


def reach_seconds(points: list[dict], target: float) -> float | None:
    """Wall-clock at which a curve first reaches ``target`` dB (linear between checkpoints; None if never)."""
    previous = {'seconds': 0.0, 'psnr': float('-inf')}
    for point in points:
        if point['psnr'] >= target:
            if previous['psnr'] == float('-inf'):
                return point['seconds']
            share = (target - previous['psnr']) / (point['psnr'] - previous['psnr'])
            return previous['seconds'] + share * (point['seconds'] - previous['seconds'])
        previous = point
    return None


def summarise(curves: dict[str, dict[int, list[dict]]], reference: dict) -> dict:
    """Per variant: final PSNR and wall-clock (mean over seeds); against the baseline of the same seed: the
    wall-clock to reach its final PSNR within ``WITHIN_DB``, that time over the baseline's, the final gap."""
    baseline = curves.get('baseline', {})
    summary = {}
    for variant, by_seed in curves.items():
        rows = []
        for seed, points in by_seed.items():
            row = {'seed': seed, 'final_psnr': points[-1]['psnr'], 'final_seconds': points[-1]['seconds']}
            if seed in baseline:
                base = baseline[seed][-1]
                reached = reach_seconds(points, base['psnr'] - WITHIN_DB)
                row.update(gap_db=points[-1]['psnr'] - base['psnr'], reach_seconds=reached,
                           reach_ratio=None if reached is None else reached / base['seconds'],
                           total_ratio=points[-1]['seconds'] / base['seconds'])
            rows.append(row)
        mean = lambda key: (statistics.fmean(r[key] for r in rows)  # noqa: E731
                            if rows and all(r.get(key) is not None for r in rows) else None)
        summary[variant] = {'seeds': [r['seed'] for r in rows], 'per_seed': rows,
                            'reached_in': sum(r.get('reach_seconds') is not None for r in rows),
                            **{key: mean(key) for key in ('final_psnr', 'final_seconds', 'gap_db', 'reach_seconds',
                                                          'reach_ratio', 'total_ratio')},
                            'psnr_std': statistics.pstdev([r['final_psnr'] for r in rows])}
    if 'baseline' in summary:
        summary['baseline']['over_bilinear_db'] = summary['baseline']['final_psnr'] - reference['psnr']
    return summary


def mean_curve(by_seed: dict) -> tuple[list[float], list[float], list[float], list[float]]:
    """Seconds (mean), PSNR mean, min and max over seeds at each checkpoint the seeds share."""
    runs = list(by_seed.values())
    length = min(len(points) for points in runs)
    seconds = [statistics.fmean(points[k]['seconds'] for points in runs) for k in range(length)]
    values = [[points[k]['psnr'] for points in runs] for k in range(length)]
    return seconds, [statistics.fmean(v) for v in values], [min(v) for v in values], [max(v) for v in values]


def draw(report: dict, png_path: Path) -> Path:
    """PSNR against training wall-clock: each variant's seed mean, the band between its seeds' min and max."""
    from effsr_core.plotting import figure

    with figure(png_path, figsize=(7, 4.2), dpi=120) as (_, ax):
        for variant, by_seed in report['curves'].items():
            seconds, mean, low, high = mean_curve(by_seed)
            minutes = [s / 60 for s in seconds]
            main = variant in ('baseline', METHOD)
            line, = ax.plot(minutes, mean, marker='o' if main else None, markersize=3,
                            linewidth=2 if main else 1, linestyle='-' if main else '--',
                            label=f'{variant} ({len(by_seed)} seed{"s" * (len(by_seed) > 1)})')
            if len(by_seed) > 1:
                ax.fill_between(minutes, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.axhline(report['bilinear_reference']['psnr'], color='0.5', linestyle=':', label='bilinear x4 (no training)')
        ax.set_xlabel('training wall-clock (min; 1 core, 1 thread per run)')
        ax.set_ylabel(f'validation PSNR (dB, 4 clips x {EVAL_FRAMES} frames)')
        ax.set_title(f'Multigrid vs fixed-size baseline: {report["iters"]} iterations, batch 2')
        ax.legend(fontsize=7, loc='lower right')
    return png_path


def write_report(out: Path, curves: dict, reference: dict, args, wall_seconds: float) -> dict:
    from effsr_core.profiling.report import machine_info

    report = {'benchmark': BENCHMARK, 'machine': machine_info(), 'command': [Path(sys.executable).name, *sys.argv],
              'iters': args.iters, 'every': args.every, 'spatial_sizes': SPATIAL, 'temporal_sizes': TEMPORAL,
              'seeds': args.seeds, 'ablation_seeds': args.ablation_seeds, 'wall_seconds': wall_seconds,
              'png': out.with_suffix('.png').name, 'bilinear_reference': reference,
              'summary': summarise(curves, reference),
              'curves': {variant: {str(seed): points for seed, points in by_seed.items()}
                         for variant, by_seed in curves.items()}}
    write_report_files(out, report, markdown)
    draw(report, out.with_suffix('.png'))
    return report


def _fmt(value, spec: str, missing: str = '-') -> str:
    return missing if value is None else format(value, spec)


def markdown(report: dict) -> str:
    m, summary, ref = report['machine'], report['summary'], report['bilinear_reference']
    lines = [f'# Multigrid time-to-quality at small scale (CPU: {m["cpu"]}, {m["cores"]} cores)', '',
             f'Command: `{" ".join(report["command"])}`  ',
             f'BasicSR BasicVSR ({NETWORK["num_feat"]} channels, {NETWORK["num_block"]} blocks, random SpyNet) from '
             f'scratch, {report["iters"]} iterations, '
             f'batch 2, Adam 5e-4; baseline LR {report["spatial_sizes"][-1]} x {report["temporal_sizes"][-1]} '
             f'frames with one cosine; multigrid {"/".join(map(str, report["spatial_sizes"]))} x '
             f'{"/".join(map(str, report["temporal_sizes"]))}, equal stages, Eq. 1 unless "plain cosine". PSNR: RGB, '
             f'no crop, 4 validation clips x {EVAL_FRAMES} frames, every {report["every"]} iterations. Wall-clock: '
             f'training only (from "Start training" to the checkpoint\'s save), the two runs of a pair side by '
             f'side on one core each (one thread); cores swapped between seeds. Means over seeds; "reach": the '
             f'wall-clock at which a run first comes within {WITHIN_DB} dB of the same seed\'s final baseline PSNR '
             f'(linear between checkpoints), over the baseline\'s whole wall-clock. Whole invocation: '
             f'{report["wall_seconds"] / 60:.0f} min.', '',
             '| variant | seeds | final PSNR (dB) | ± std | gap to baseline (dB) | wall-clock (min) | wall-clock / '
             'baseline | reaches baseline - 0.05 dB at (min) | reach / baseline wall-clock |',
             '|---|---|---|---|---|---|---|---|---|']
    for name, s in summary.items():
        reach = (f'{_fmt(s["reach_seconds"] and s["reach_seconds"] / 60, ".1f")}'
                 if s['reached_in'] == len(s['seeds']) else f'{s["reached_in"]} of {len(s["seeds"])} seeds reach it')
        lines.append(f'| {name} | {len(s["seeds"])} | {s["final_psnr"]:.3f} | {s["psnr_std"]:.3f} | '
                     f'{_fmt(s["gap_db"], "+.3f")} | {s["final_seconds"] / 60:.1f} | {_fmt(s["total_ratio"], ".2f")} | '
                     f'{reach} | {_fmt(s["reach_ratio"], ".2f")} |')
    lines.append(f'| reference: bilinear x4 (no training) | - | {ref["psnr"]:.3f} | - | - | - | - | - | - |')
    if 'baseline' in summary:
        lines += ['', f'The baseline ends {summary["baseline"]["over_bilinear_db"]:+.3f} dB over the bilinear skip.']
    lines += ['', f'![PSNR against wall-clock]({report["png"]})']
    return '\n'.join(lines) + '\n'


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog='example:\n  python benchmarks/multigrid_time_to_quality.py --iters 1000\n')
    parser.add_argument('--iters', type=int, default=1000, help='training iterations of every run (default 1000)')
    parser.add_argument('--every', type=int, default=100, help='iterations between scored checkpoints (default 100)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='seeds of baseline and method')
    parser.add_argument('--ablation-seeds', type=int, nargs='*', default=[0],
                        help=f'seeds of the ablations {", ".join(ABLATIONS)} (default 0; none: skip them)')
    parser.add_argument('--workdir', default=str(REPO / 'benchmarks/work/multigrid_time_to_quality'),
                        help='where runs are trained and kept')
    parser.add_argument('--out', default=str(RESULTS / f'{BENCHMARK}_cpu'), help='results path without suffix')
    parser.add_argument('--redraw', action='store_true', help='only draw the PNG again from the JSON at --out')
    parser.add_argument('--quick', action='store_true', help='a few iterations only (smoke run, not for results)')
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.redraw:
        import json

        path = out.with_suffix('.json')
        report = json.loads(path.read_text()) if path.exists() else {}
        if report.get('benchmark') != BENCHMARK:
            parser.error(f'argument --out: {path} is not a results file of {BENCHMARK}')
        print(draw(report, out.with_suffix('.png')))
        return
    if args.iters < 1 or args.every < 1 or args.iters % args.every:
        parser.error(f'argument --every: must divide --iters ({args.iters}), got {args.every}')
    if args.quick:
        args.iters, args.every, args.seeds, args.ablation_seeds = 8, 4, args.seeds[:1], []
        out = out.with_name(out.name + '_quick')
    workdir = prepare_workdir(args.workdir)
    started = time.time()
    reference = bilinear_reference()
    curves: dict[str, dict[int, list[dict]]] = {}
    for number, pair in enumerate(jobs(args)):
        options = [run_options(variant, seed, args.iters, args.every) for variant, seed in pair]
        cores = (0, 1) if number % 2 == 0 else (1, 0)
        processes = [launch(workdir, opt, core) for opt, core in zip(options, cores)]
        for (variant, seed), opt, process in zip(pair, options, processes):
            wait(workdir, opt, process)
            curves.setdefault(variant, {})[seed] = curve(workdir, opt, args.every)
            print(f'[{time.time() - started:.0f}s] {variant} seed {seed}: final PSNR '
                  f'{curves[variant][seed][-1]["psnr"]:.3f} dB after {curves[variant][seed][-1]["seconds"]:.0f} s',
                  flush=True)
        report = write_report(out, curves, reference, args, time.time() - started)
    print(markdown(report))


if __name__ == '__main__':
    main()
