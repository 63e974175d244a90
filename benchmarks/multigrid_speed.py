"""Multigrid wall-clock on CPU: a reduced BasicSR BasicVSR trained on the bundled REDS-layout clips, multigrid
(the paper's 32/64 x 7/11/15, equal stages) against the fixed-size baseline (LR 64 x 15 frames), same iterations
and batch size, data loading included.

Both variants train the same way as ``python -m effsr_core.train`` does with and without a ``multigrid`` block:
BasicSR's ``REDSRecurrentDataset`` read by a DataLoader with workers (multigrid: ``MultigridDataset`` with the
BasicSR reshape and ``MultigridBatchSampler``), BasicSR's ``BasicVSR`` (SpyNet randomly initialised; no download
here), Charbonnier loss, Adam. One run per variant and repeat, interleaved (repeat r runs both, in alternating
order), each from the same seed; the medians over repeats are reported. Per iteration the time from asking the
loader for a batch to the end of the optimiser step is recorded, so each stage's time per iteration can be set
against its share of LR pixels x frames. The bound of the speed-up is the ratio of processed LR pixels x frames.

    python benchmarks/multigrid_speed.py [--quick]     # writes benchmarks/results/multigrid_speed_cpu.{json,md}
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, RandomSampler

RESULTS = Path(__file__).resolve().parent / 'results'
VARIANTS = ('baseline', 'multigrid')


def dataset(root: Path, patch: int, frames: int):
    """BasicSR's REDSRecurrentDataset on the offline clips at an LR patch of ``patch`` and ``frames`` frames."""
    from basicsr.data.reds_dataset import REDSRecurrentDataset

    video = root / 'video_sr'
    return REDSRecurrentDataset(dict(
        dataroot_gt=str(video / 'train_sharp'), dataroot_lq=str(video / 'train_sharp_bicubic' / 'X4'),
        meta_info_file=str(video / 'meta_info_offline_GT.txt'), val_partition='REDS4', test_mode=False,
        io_backend=dict(type='disk'), num_frame=frames, gt_size=patch * 4, interval_list=[1], random_reverse=False,
        use_hflip=True, use_rot=True, scale=4, phase='train'))


def loader(variant: str, args, schedule) -> DataLoader:
    from multigrid_plugin.basicsr.datasets import reshape
    from multigrid_plugin.sampling import MultigridBatchSampler, MultigridDataset

    data = dataset(args.data, args.patch, args.frames)
    sampler = RandomSampler(data, replacement=True, num_samples=args.iters * args.batch,
                            generator=torch.Generator().manual_seed(args.seed))
    if variant == 'baseline':
        return DataLoader(data, batch_size=args.batch, sampler=sampler, num_workers=args.workers, drop_last=True)
    batches = MultigridBatchSampler(sampler, args.batch, schedule)
    return DataLoader(MultigridDataset(data, reshape), batch_sampler=batches, num_workers=args.workers)


def train(variant: str, args, schedule) -> dict:
    """One training run; per-iteration seconds (batch wait + step) and input shapes."""
    from basicsr.archs.basicvsr_arch import BasicVSR
    from basicsr.losses.basic_loss import CharbonnierLoss

    torch.manual_seed(args.seed)
    net = BasicVSR(num_feat=args.num_feat, num_block=args.num_block, spynet_path=None).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.9, 0.99))
    criterion = CharbonnierLoss()
    started = time.perf_counter()
    seconds, shapes = [], []
    batches = iter(loader(variant, args, schedule))
    for _ in range(args.iters):
        tick = time.perf_counter()
        batch = next(batches)
        optimizer.zero_grad()
        criterion(net(batch['lq']), batch['gt']).backward()
        optimizer.step()
        seconds.append(time.perf_counter() - tick)
        shapes.append(list(batch['lq'].shape[1:2]) + list(batch['lq'].shape[-1:]))  # frames, LR patch
    return {'wall_seconds': time.perf_counter() - started, 'iteration_seconds': seconds, 'shapes': shapes}


def summarise(runs: dict, schedule, args) -> dict:
    wall = {variant: statistics.median(run['wall_seconds'] for run in runs[variant]) for variant in VARIANTS}
    bound = schedule.pixel_frame_ratio(args.patch, args.frames)
    baseline_per_iter = statistics.median(s for run in runs['baseline'] for s in run['iteration_seconds'][1:])
    stages = []
    for stage in schedule.stages:
        per_run = [statistics.median(run['iteration_seconds'][stage.first_iter - 1:stage.last_iter])
                   for run in runs['multigrid']]
        share = stage.patch_size ** 2 * stage.frames / (args.patch ** 2 * args.frames)
        stages.append({'stage': stage.index + 1, 'patch': stage.patch_size, 'frames': stage.frames,
                       'iterations': [stage.first_iter, stage.last_iter], 'pixel_frame_share': share,
                       'median_seconds_per_iter': statistics.median(per_run),
                       'time_share': statistics.median(per_run) / baseline_per_iter})
    speedup = wall['baseline'] / wall['multigrid']
    return {'median_wall_seconds': wall, 'speedup': speedup, 'bound': bound, 'fraction_of_bound': speedup / bound,
            'target_fraction_of_bound': 0.8, 'baseline_median_seconds_per_iter': baseline_per_iter, 'stages': stages}


def markdown(report: dict) -> str:
    s, m, a = report['summary'], report['machine'], report['settings']
    lines = [
        '# Multigrid wall-clock on CPU (BasicSR BasicVSR, bundled clips)', '',
        f'Machine: {m["cpu"]}, {m["cores"]} cores, torch {m["torch"]} ({m["threads"]} threads), Python {m["python"]}.',
        f'Command: `{" ".join(report["command"])}`', '',
        f'BasicVSR {a["num_feat"]} feat x {a["num_block"]} blocks, batch {a["batch"]}, {a["iters"]} iterations, '
        f'{a["workers"]} loader worker(s); baseline LR {a["patch"]} x {a["frames"]} frames; multigrid '
        f'{"/".join(map(str, a["spatial_sizes"]))} x {"/".join(map(str, a["temporal_sizes"]))}, equal stages. '
        f'{a["repeats"]} interleaved repeats, medians.', '',
        '| variant | median wall-clock (s) | runs (s) |', '|---|---|---|']
    for variant in VARIANTS:
        runs = ', '.join(f'{run["wall_seconds"]:.1f}' for run in report['runs'][variant])
        lines.append(f'| {variant} | {s["median_wall_seconds"][variant]:.1f} | {runs} |')
    verdict = 'met' if s['fraction_of_bound'] >= s['target_fraction_of_bound'] else 'MISSED'
    lines += ['', f'Speed-up {s["speedup"]:.2f}x; bound (LR pixels x frames) {s["bound"]:.2f}x; '
                  f'{s["fraction_of_bound"]:.2f} of the bound (target >= {s["target_fraction_of_bound"]}: {verdict}).',
              '', 'Per stage (multigrid): time per iteration against the baseline\'s, and against the stage\'s share '
                  f'of LR pixels x frames (baseline: {s["baseline_median_seconds_per_iter"]:.3f} s/iter).', '',
              '| stage | LR patch x frames | iterations | s/iter (median) | time share | pixel x frame share |',
              '|---|---|---|---|---|---|']
    for st in s['stages']:
        first, last = st['iterations']
        lines.append(f'| {st["stage"]} | {st["patch"]} x {st["frames"]} | {first}-{last} | '
                     f'{st["median_seconds_per_iter"]:.3f} | {st["time_share"]:.2f} | {st["pixel_frame_share"]:.2f} |')
    return '\n'.join(lines) + '\n'


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog='example:\n  python benchmarks/multigrid_speed.py --iters 60 --repeats 3\n')
    parser.add_argument('--iters', type=int, default=60, help='training iterations per run (default 60)')
    parser.add_argument('--repeats', type=int, default=3, help='interleaved repeats of both variants (default 3)')
    parser.add_argument('--batch', type=int, default=2, help='clips per batch, the same in every stage (default 2)')
    parser.add_argument('--patch', type=int, default=64, help='baseline LR patch size H (default 64)')
    parser.add_argument('--frames', type=int, default=15, help='baseline frames T (default 15)')
    parser.add_argument('--num-feat', type=int, default=16, help='BasicVSR width (default 16)')
    parser.add_argument('--num-block', type=int, default=2, help='BasicVSR residual blocks per branch (default 2)')
    parser.add_argument('--workers', type=int, default=1, help='DataLoader workers (default 1)')
    parser.add_argument('--threads', type=int, default=1, help='torch threads of the training process (default 1)')
    parser.add_argument('--seed', type=int, default=0, help='seed of weights and sampling (default 0)')
    parser.add_argument('--data', type=Path, default=Path('data/offline'), help='offline data root (made if absent)')
    parser.add_argument('--quick', action='store_true', help='a smoke run (not for the results)')
    parser.add_argument('--out', default=str(RESULTS / 'multigrid_speed_cpu'), help='results path without suffix')
    args = parser.parse_args(argv)
    if args.quick:
        args.iters, args.repeats, args.frames, args.out = 12, 1, 6, args.out + '_quick'
    torch.set_num_threads(args.threads)
    from effsr_core import compat
    from effsr_core.data.make_offline_data import ensure_offline_data
    from effsr_core.profiling.report import machine_info
    from multigrid_plugin.schedule import MultigridSchedule

    compat.install()
    ensure_offline_data(args.data, seed=0)
    schedule = MultigridSchedule.from_baseline(args.patch, args.frames, args.iters)
    runs = {variant: [] for variant in VARIANTS}
    for repeat in range(args.repeats):
        for variant in (VARIANTS if repeat % 2 == 0 else VARIANTS[::-1]):
            run = train(variant, args, schedule)
            expected = [[schedule(i + 1)[2], schedule(i + 1)[1]] if variant == 'multigrid' else
                        [args.frames, args.patch] for i in range(args.iters)]
            assert run['shapes'] == expected, f'{variant}: inputs did not follow the schedule'
            runs[variant].append(run)
            print(f'repeat {repeat + 1}/{args.repeats} {variant}: {run["wall_seconds"]:.1f} s', flush=True)
    settings = {**{k: v for k, v in vars(args).items() if k not in ('data', 'out', 'quick')},
                'spatial_sizes': list(schedule.spatial_sizes), 'temporal_sizes': list(schedule.temporal_sizes)}
    report = {'machine': machine_info(), 'command': [Path(sys.executable).name, *sys.argv], 'settings': settings,
              'summary': summarise(runs, schedule, args), 'runs': runs}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix('.json').write_text(json.dumps(report, indent=1))
    out.with_suffix('.md').write_text(markdown(report))
    print(markdown(report))


if __name__ == '__main__':
    main()
