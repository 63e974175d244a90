"""Multigrid quality at small scale on the bundled clips (BI x4), through BasicSR's own pipeline: the paper's
ablations after the same number of iterations, for several seeds.

A reduced BasicVSR (BasicSR's arch, 16 channels, 2 blocks, batch 2) trains from scratch for the same iterations in
every variant; the baseline at LR 32 x 6 frames (half the paper's 64 x 15 in space, the ratio of its cycles kept):

* ``baseline``: fixed size, cosine annealing over the whole run (BasicSR's CosineAnnealingRestartLR);
* ``S&T hierarchical``: 16/32 x 3/6, the temporal cycle inside each spatial stage, Eq. 1 (the paper's method);
* ``S&T synchronous``: both grow together (16 x 3, then 32 x 6), Eq. 1 (Table 8);
* ``S only`` / ``T only``: one cycle, the other size fixed at the baseline's, Eq. 1;
* ``S&T hierarchical, plain cosine``: the hierarchical cycles without Eq. 1 (one cosine over the whole run).

PSNR / SSIM (RGB, no crop) on the first 30 frames of the four validation clips; mean and spread over seeds.
Finished runs in the work folder are reused when their options are unchanged.

    python benchmarks/multigrid_quality.py [--seeds 0 1 2] [--iters 150] [--quick]
        # writes benchmarks/results/multigrid_quality_cpu.{json,md}
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml
from training_runs import (REPO, VAL_CLIPS, evaluated, prepare_workdir, run, seed_summary, video_quality,
                           write_report_files)

RESULTS = Path(__file__).parent / 'results'
TEMPLATE = REPO / 'options/basicsr/multigrid/demo_multigrid_BasicVSR_tiny_offline.yml'
SPATIAL, TEMPORAL = [16, 32], [3, 6]
EVAL_FRAMES = 30  # per validation clip
#: variant: (multigrid section without the LR keys, or None for the fixed-size baseline; uses Eq. 1)
VARIANTS = {
    'baseline': (None, False),
    'S&T hierarchical': ({'order': 'hierarchical', 'mode': 'spatial_temporal'}, True),
    'S&T synchronous': ({'order': 'synchronous', 'mode': 'spatial_temporal'}, True),
    'S only': ({'order': 'hierarchical', 'mode': 'spatial'}, True),
    'T only': ({'order': 'hierarchical', 'mode': 'temporal'}, True),
    'S&T hierarchical, plain cosine': ({'order': 'hierarchical', 'mode': 'spatial_temporal'}, False),
}


def variant_options(variant: str, seed: int, iters: int) -> dict:
    cycles, eq1 = VARIANTS[variant]
    opt = yaml.safe_load(TEMPLATE.read_text())
    opt['name'] = f'{variant.replace(" ", "_").replace("&", "").replace(",", "")}_seed{seed}'
    opt['manual_seed'] = seed
    opt['datasets']['train'].update(num_frame=TEMPORAL[-1], gt_size=SPATIAL[-1] * opt['scale'], num_worker_per_gpu=1)
    opt.pop('val')  # evaluated afterwards on the full clips, the same way for every network
    opt['datasets'].pop('val')
    opt['logger'].update(print_freq=50, save_checkpoint_freq=100000, use_tb_logger=False)
    opt['train']['total_iter'] = iters
    lr = opt['train']['optim_g']['lr']
    opt.pop('multigrid')
    if cycles is not None:
        opt['multigrid'] = {'spatial_sizes': SPATIAL, 'temporal_sizes': TEMPORAL, **cycles}
        if eq1:  # the LR keys are read by MultigridLR only (the options check refuses them otherwise)
            opt['multigrid']['eta_min'] = 1e-6
    if eq1:
        opt['train']['scheduler'] = {'type': 'MultigridLR'}
    else:
        opt['train']['scheduler'] = {'type': 'CosineAnnealingRestartLR', 'periods': [iters], 'restart_weights': [1],
                                     'eta_min': 1e-6}
    assert opt['train']['optim_g']['lr'] == lr
    return opt


def evaluate(checkpoint: Path, options_path: Path) -> dict:
    return video_quality(checkpoint, options_path, EVAL_FRAMES)[1]


class BilinearUpsampling(torch.nn.Module):
    """x4 bilinear upsampling of every frame: BasicVSR's own skip path, the reference an untrained network gives."""

    def forward(self, lqs: torch.Tensor) -> torch.Tensor:
        n, t, c, h, w = lqs.shape
        up = torch.nn.functional.interpolate(lqs.flatten(0, 1), scale_factor=4, mode='bilinear', align_corners=False)
        return up.view(n, t, c, 4 * h, 4 * w)


def bilinear_reference() -> dict:
    """PSNR / SSIM of the bilinear skip alone on the same frames, so that a trained network can be placed."""
    from effsr_core.profiling.quality import VideoClipFolders, evaluate_quality

    video = REPO / 'data/offline/video_sr'
    dataset = VideoClipFolders(video / 'train_sharp', video / 'train_sharp_bicubic/X4', clips=list(VAL_CLIPS),
                               max_frames=EVAL_FRAMES)
    with torch.no_grad():
        quality = evaluate_quality(BilinearUpsampling(), dataset, crop_border=0)
    return {'psnr': quality.psnr, 'ssim': quality.ssim}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog='example:\n  python benchmarks/multigrid_quality.py --seeds 0 1 2\n')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='seeds (default 0 1 2)')
    parser.add_argument('--iters', type=int, default=150, help='training iterations of every run (default 150)')
    parser.add_argument('--variants', nargs='+', choices=list(VARIANTS), default=list(VARIANTS),
                        help='variants to run (default: all)')
    parser.add_argument('--workdir', default=str(REPO / 'benchmarks/work/multigrid_quality'),
                        help='where runs are trained and kept')
    parser.add_argument('--quick', action='store_true', help='a few iterations only (smoke run, not for results)')
    parser.add_argument('--out', default=str(RESULTS / 'multigrid_quality_cpu'), help='results path without suffix')
    args = parser.parse_args(argv)
    if args.quick:
        args.iters, args.seeds, args.out = 8, args.seeds[:1], args.out + '_quick'
    workdir = prepare_workdir(args.workdir)
    started = time.time()
    reference = bilinear_reference()
    results = {variant: [] for variant in args.variants}
    for seed in args.seeds:  # seed-major, so that an interrupted run still covers every variant
        for variant in args.variants:
            opt = variant_options(variant, seed, args.iters)
            checkpoint = run(workdir, opt)
            results[variant].append({'seed': seed, **evaluated(workdir, opt['name'], checkpoint, evaluate)})
            print(f'[{time.time() - started:.0f}s] {variant} seed {seed}: {results[variant][-1]}', flush=True)
            report = write_report(Path(args.out), results, reference, args, time.time() - started)
    print(markdown(report))


def write_report(out: Path, results: dict, reference: dict, args, wall_seconds: float) -> dict:
    from effsr_core.profiling.report import machine_info

    report = {'machine': machine_info(), 'command': [Path(sys.executable).name, *sys.argv], 'iters': args.iters,
              'spatial_sizes': SPATIAL, 'temporal_sizes': TEMPORAL, 'seeds': args.seeds,
              'wall_seconds': wall_seconds, 'bilinear_reference': reference, 'summary': seed_summary(results),
              'runs': results}
    return write_report_files(out, report, markdown)


def markdown(report: dict) -> str:
    m = report['machine']
    trained = sum(r['train_seconds'] or 0 for runs in report['runs'].values() for r in runs)
    lines = [f'# Multigrid quality at small scale (CPU: {m["cpu"]}, {m["threads"]} threads)', '',
             f'Command: `{" ".join(report["command"])}`  ',
             f'BasicSR BasicVSR (16 channels, 2 blocks) trained from scratch for {report["iters"]} iterations in '
             f'every variant (batch 2, Adam, LR of the demo config); baseline at LR {report["spatial_sizes"][-1]} x '
             f'{report["temporal_sizes"][-1]} frames with one cosine; multigrid cycles '
             f'{"/".join(map(str, report["spatial_sizes"]))} x {"/".join(map(str, report["temporal_sizes"]))}, '
             f'equal stages, Eq. 1 unless "plain cosine". PSNR/SSIM: RGB, no crop, 4 validation clips x '
             f'{EVAL_FRAMES} frames, mean over seeds {report["seeds"]} (column "runs": seeds finished). Training time '
             f'of all runs: {trained / 60:.0f} min.', '',
             '| variant | runs | PSNR (dB) | ± std | SSIM | median train time (s) |', '|---|---|---|---|---|---|']
    for name, s in report['summary'].items():
        seconds = statistics.median(r['train_seconds'] for r in report['runs'][name])
        lines.append(f'| {name} | {s["runs"]} | {s["psnr"]:.3f} | {s["psnr_std"]:.3f} | {s["ssim"]:.4f} '
                     f'| {seconds:.0f} |')
    ref = report['bilinear_reference']
    lines.append(f'| reference: bilinear x4 (the network\'s skip, no training) | - | {ref["psnr"]:.3f} | - | '
                 f'{ref["ssim"]:.4f} | - |')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
