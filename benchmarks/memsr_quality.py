"""MemSR quality at small scale on the bundled photos (BI x4), through BasicSR's own pipeline: the paper's Table 1
ablation after the same number of iterations, for several seeds.

A teacher in the paper's form (``EDSRPixelShuffle``: EDSR backbone, one-conv pixel-shuffle upsampler; 32 features x
4 blocks, a reduced Teacher-M) is trained once. For each seed, Alg. 1 (``python -m memsr_plugin.init --widths 32``,
the Plain-M construction: the teacher's width in every layer) makes the student and its adapters, and three
students of that architecture train for the same iterations with the same optimiser and one-cycle LR:

* ``random init``: PyTorch's default initialisation, L1 loss only (Table 1, first row: the plain network trained
  directly);
* ``winning init``: Alg. 1's weights, L1 loss only;
* ``winning init + distillation``: Alg. 1's weights and adapters, ``MemSRDistillModel`` (Eq. 14, lambda 0.3,
  epsilon 1e-5).

PSNR / SSIM on Y (4-pixel border cropped) of the validation photos, with the teacher's and bicubic's for
reference; mean and spread over seeds. Finished runs in the work folder are reused when their options are unchanged.

    python benchmarks/memsr_quality.py [--seeds 0 1 2] [--iters 600] [--quick]
        # writes benchmarks/results/memsr_quality_cpu.{json,md}
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml
from training_runs import REPO, evaluated, image_quality, prepare_workdir, run, seed_summary, write_report_files

RESULTS = Path(__file__).parent / 'results'
TEACHER_OPTIONS = REPO / 'options/basicsr/memsr/demo_EDSR_teacher_x4_offline.yml'
DISTILL_TEMPLATE = REPO / 'options/basicsr/memsr/demo_MemSR_distill_x4_offline.yml'
TEACHER = {'type': 'EDSRPixelShuffle', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 32, 'num_block': 4,
           'upscale': 4}
VARIANTS = ('random init', 'winning init', 'winning init + distillation')
MAX_LR = 5e-4
VAL_PHOTOS = REPO / 'data/offline/image_sr/val/HR'


def _schedule(opt: dict, iters: int, max_lr: float) -> None:
    opt['train'].update(total_iter=iters, warmup_iter=-1, ema_decay=0)
    opt['train']['optim_g'].update(type='Adam', lr=max_lr, betas=[0.9, 0.999])
    opt['train']['scheduler'] = {'type': 'PyTorchOneCycleLR', 'max_lr': max_lr, 'total_steps': iters}
    opt.pop('val')  # evaluated afterwards, the same way for every network
    opt['datasets'].pop('val')
    opt['logger'].update(print_freq=100, save_checkpoint_freq=100000, use_tb_logger=False)


def teacher_options(iters: int) -> dict:
    opt = yaml.safe_load(TEACHER_OPTIONS.read_text())
    opt.update(name='teacher', model_type='MemSRTeacherModel', network_g=dict(TEACHER))  # SRModel + one-cycle LR
    _schedule(opt, iters, 1e-3)
    opt['train']['optim_g']['lr'] = 1e-3
    return opt


def initialise(workdir: Path, teacher: Path, seed: int) -> Path:
    """Alg. 1 on the trained teacher (reused when done); returns the distillation options it writes."""
    output = workdir / f'init_seed{seed}'
    options = output / f'distill_seed{seed}.yml'
    if not options.exists():
        subprocess.run([sys.executable, '-m', 'memsr_plugin.init', '-opt', str(workdir / 'teacher.yml'),
                        '--checkpoint', str(teacher), '--widths', str(TEACHER['num_feat']), '--seed', str(seed),
                        '--output', str(output), '--distill-options', str(DISTILL_TEMPLATE), '--name',
                        f'distill_seed{seed}'], cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    return options


def student_options(variant: str, distill_options: Path, seed: int, iters: int) -> dict:
    opt = yaml.safe_load(distill_options.read_text())
    opt.update(name=f'{variant.replace(" ", "_").replace("+", "and")}_seed{seed}', manual_seed=seed)
    if variant != 'winning init + distillation':
        opt.update(model_type='MemSRTeacherModel')  # SRModel with the one-cycle LR
        for key in ('network_t', 'distill'):
            opt.pop(key)
        opt['path'].pop('pretrain_network_t')
        if variant == 'random init':
            opt['path']['pretrain_network_g'] = None
        else:
            opt['path']['param_key_g'] = 'params'
    _schedule(opt, iters, MAX_LR)
    return opt


class Bicubic(torch.nn.Module):
    def forward(self, x):
        return torch.nn.functional.interpolate(x, scale_factor=4, mode='bicubic', align_corners=False)


def bicubic_reference() -> dict:
    from effsr_core.profiling.quality import PairedImageFolders, evaluate_quality

    photos = REPO / 'data/offline/image_sr/val'
    with torch.no_grad():
        quality = evaluate_quality(Bicubic(), PairedImageFolders(photos / 'HR', photos / 'LR_bicubic/X4'),
                                   crop_border=4, test_y_channel=True)
    return {'psnr': quality.psnr, 'ssim': quality.ssim}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog='example:\n  python benchmarks/memsr_quality.py --seeds 0 1 2\n')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='seeds (default 0 1 2)')
    parser.add_argument('--iters', type=int, default=600, help='training iterations of every student (default 600)')
    parser.add_argument('--teacher-iters', type=int, default=2000, help='training iterations of the teacher')
    parser.add_argument('--workdir', default=str(REPO / 'benchmarks/work/memsr_quality'),
                        help='where runs are trained and kept')
    parser.add_argument('--quick', action='store_true', help='a few iterations only (smoke run, not for results)')
    parser.add_argument('--out', default=str(RESULTS / 'memsr_quality_cpu'), help='results path without suffix')
    args = parser.parse_args(argv)
    if args.quick:
        args.iters, args.teacher_iters, args.seeds, args.out = 10, 10, args.seeds[:1], args.out + '_quick'
        args.workdir += '_quick'
    workdir = prepare_workdir(args.workdir)
    started = time.time()
    teacher_opt = teacher_options(args.teacher_iters)
    teacher = run(workdir, teacher_opt)
    references = {'bicubic': bicubic_reference(),
                  'teacher': evaluated(workdir, 'teacher', teacher, image_quality)}
    print(f'[{time.time() - started:.0f}s] references: {references}', flush=True)
    results = {variant: [] for variant in VARIANTS}
    for seed in args.seeds:  # seed-major, so that an interrupted run still covers every variant
        distill_options = initialise(workdir, teacher, seed)
        for variant in VARIANTS:
            opt = student_options(variant, distill_options, seed, args.iters)
            checkpoint = run(workdir, opt)
            results[variant].append({'seed': seed, **evaluated(workdir, opt['name'], checkpoint, image_quality)})
            print(f'[{time.time() - started:.0f}s] {variant} seed {seed}: {results[variant][-1]}', flush=True)
            report = write_report(Path(args.out), results, references, args, time.time() - started)
    print(markdown(report))


def write_report(out: Path, results: dict, references: dict, args, wall_seconds: float) -> dict:
    from effsr_core.profiling.report import machine_info

    report = {'machine': machine_info(), 'command': [Path(sys.executable).name, *sys.argv], 'iters': args.iters,
              'teacher_iters': args.teacher_iters, 'teacher': TEACHER, 'max_lr': MAX_LR, 'seeds': args.seeds,
              'wall_seconds': wall_seconds, 'references': references, 'summary': seed_summary(results), 'runs': results}
    return write_report_files(out, report, markdown)


def markdown(report: dict) -> str:
    m, refs = report['machine'], report['references']
    lines = [f'# MemSR quality at small scale, CPU ({m["cpu"]}, {m["threads"]} threads, torch {m["torch"]})', '',
             f'Command: `{" ".join(report["command"])}`  ',
             f'x4 on the bundled photos ({len(list(VAL_PHOTOS.glob("*.png")))} validation images, PSNR / SSIM on Y, '
             f'border 4). Teacher '
             f'{report["teacher"]["type"]} {report["teacher"]["num_feat"]}x{report["teacher"]["num_block"]}, '
             f'{report["teacher_iters"]} iterations: {refs["teacher"]["psnr"]:.3f} dB / {refs["teacher"]["ssim"]:.4f}; '
             f'bicubic {refs["bicubic"]["psnr"]:.3f} dB / {refs["bicubic"]["ssim"]:.4f}. Students: '
             f'{report["iters"]} iterations each, Adam, one-cycle LR max {report["max_lr"]:g}, batch 8, HR patch 96. '
             f'Wall time {report["wall_seconds"] / 60:.1f} min.', '',
             '| student | PSNR mean (dB) | spread (pstdev) | SSIM mean | per seed (dB) |', '|---|---|---|---|---|']
    for name, s in report['summary'].items():
        per_seed = ', '.join(f'{r["psnr"]:.3f}' for r in report['runs'][name])
        lines.append(f'| {name} | {s["psnr"]:.3f} | {s["psnr_std"]:.3f} | {s["ssim"]:.4f} | {per_seed} |')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
