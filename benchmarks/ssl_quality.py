"""SSL quality at small scale on the bundled clips (BI x4), through BasicSR's own pipeline.

1. Pretrain a reduced BasicVSR (``SSLBasicVSR``, 32 channels, 4 blocks per branch, dense) on the training clips.
2. From that checkpoint, at ratio 0.5 and for each seed: SSL with TF, SSL without TF, L1-norm (one-shot), ASSL
   (aligned) — each fine-tuned for the same number of iterations (SSL / ASSL regularise first) — and BasicVSR-lite
   (uniformly narrower, trained from scratch for pretraining + regularisation + fine-tuning iterations).
3. PSNR / SSIM (RGB, no border crop) on the four REDS4-style validation clips (all 100 frames), averaged over seeds.

    python benchmarks/ssl_quality.py [--seeds 0 1 2] [--quick]   # writes benchmarks/results/ssl_quality_cpu.{json,md}
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / 'results'
TEMPLATE = REPO / 'options/basicsr/ssl/demo_SSL_BasicVSR_tiny_offline.yml'
VAL_CLIPS = ('000', '011', '015', '020')


def schedule(quick: bool) -> dict:
    if quick:
        return dict(pretrain=4, reg=dict(delta=0.05, tau=0.1, t1=1, t2=1), finetune=4, lite_feat=24)
    return dict(pretrain=1200, reg=dict(delta=0.01, tau=0.1, t1=5, t2=50), finetune=300, lite_feat=24)


def base_options(workdir: Path, name: str, seed: int) -> dict:
    opt = yaml.safe_load(TEMPLATE.read_text())
    opt['name'], opt['manual_seed'] = name, seed
    opt['datasets']['train'].update(num_worker_per_gpu=1)
    opt.pop('val')  # evaluated afterwards on the full clips, the same way for every network
    opt['datasets'].pop('val')
    opt['logger'].update(print_freq=50, save_checkpoint_freq=100000, use_tb_logger=False)
    opt['network_g'].update(num_feat=32, num_block=4, upsample_feat=32)
    return opt


def run(workdir: Path, opt: dict) -> Path:
    path = workdir / f'{opt["name"]}.yml'
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    log = workdir / f'{opt["name"]}.log'
    with open(log, 'w') as f:
        subprocess.run([sys.executable, '-m', 'effsr_core.train', '-opt', str(path)], cwd=workdir, stdout=f,
                       stderr=subprocess.STDOUT, check=True)
    return workdir / 'experiments' / opt['name'] / 'models' / 'net_g_latest.pth'


def pretrain(workdir: Path, plan: dict) -> Path:
    opt = base_options(workdir, 'pretrain_BasicVSR_32x4', 0)
    opt['model_type'] = 'VideoRecurrentModel'
    opt.pop('pruning')
    opt['path']['pretrain_network_g'] = None
    opt['train'].pop('tf_opt')
    opt['train'].update(total_iter=plan['pretrain'], factor_lr_mul=1, fix_flow=None)
    opt['train']['optim_g']['lr'] = 5e-4
    opt['train']['scheduler'].update(periods=[plan['pretrain']], eta_min=1e-6)
    return run(workdir, opt)


def variant_options(workdir: Path, variant: str, seed: int, pretrained: Path, plan: dict) -> dict:
    opt = base_options(workdir, f'{variant}_seed{seed}', seed)
    opt['path']['pretrain_network_g'] = str(pretrained)
    reg_iters = round(plan['reg']['tau'] / plan['reg']['delta']) * plan['reg']['t1'] + plan['reg']['t2']
    opt['train']['scheduler']['periods'] = [plan['finetune']]
    method = {'SSL+TF': 'ssl', 'SSL': 'ssl', 'L1-norm': 'l1_norm', 'ASSL': 'assl'}.get(variant)
    if method is None:  # BasicVSR-lite: trained from scratch with the whole budget
        budget = plan['pretrain'] + reg_iters + plan['finetune']
        opt['model_type'] = 'VideoRecurrentModel'
        opt.pop('pruning')
        opt['path']['pretrain_network_g'] = None
        opt['network_g'].update(num_feat=plan['lite_feat'], upsample_feat=plan['lite_feat'])
        opt['train'].pop('tf_opt')
        opt['train'].update(total_iter=budget, factor_lr_mul=1)
        opt['train']['optim_g']['lr'] = 5e-4
        opt['train']['scheduler'].update(periods=[budget], eta_min=1e-6)
        return opt
    opt['pruning'] = {'method': method, 'ratio': 0.5, 'regularization': copy.deepcopy(plan['reg'])}
    regularised = method != 'l1_norm'
    opt['train']['total_iter'] = plan['finetune'] + (reg_iters if regularised else 0)
    if variant != 'SSL+TF':
        opt['train'].pop('tf_opt')
    return opt


def evaluate(checkpoint: Path, options_path: Path) -> dict:
    from effsr_core.profiling.counting import count_ops, count_parameters
    from effsr_core.profiling.models import build_model_from_options
    from effsr_core.profiling.quality import VideoClipFolders, evaluate_quality

    model = build_model_from_options(options_path, checkpoint)
    video = REPO / 'data/offline/video_sr'
    dataset = VideoClipFolders(video / 'train_sharp', video / 'train_sharp_bicubic/X4', clips=list(VAL_CLIPS))
    with torch.no_grad():
        quality = evaluate_quality(model, dataset, crop_border=0)
    ops = count_ops(model, torch.rand(1, 3, 3, 180, 320), exclude=('spynet',))
    return {'psnr': quality.psnr, 'ssim': quality.ssim, 'params': count_parameters(model, ('spynet',)).counted,
            'gmacs_per_frame_180x320': ops.counted.macs / 1e9}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--variants', nargs='+', default=['SSL+TF', 'SSL', 'L1-norm', 'ASSL', 'BasicVSR-lite'])
    parser.add_argument('--workdir', default=str(REPO / 'benchmarks/work/ssl_quality'))
    parser.add_argument('--quick', action='store_true', help='a few iterations only (smoke run, not for results)')
    parser.add_argument('--out', default=str(RESULTS / 'ssl_quality_cpu'))
    args = parser.parse_args(argv)
    from effsr_core.data.make_offline_data import ensure_offline_data

    ensure_offline_data(REPO / 'data/offline', seed=0)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / 'data').exists():
        (workdir / 'data').symlink_to(REPO / 'data')
    plan = schedule(args.quick)
    started = time.time()
    pretrained = pretrain(workdir, plan)
    print(f'[{time.time() - started:.0f}s] pretrained {pretrained}', flush=True)
    results = {'pretrained (dense)': [evaluate(pretrained, workdir / 'pretrain_BasicVSR_32x4.yml')]}
    for variant in args.variants:
        results[variant] = []
        for seed in args.seeds:
            opt = variant_options(workdir, variant, seed, pretrained, plan)
            checkpoint = run(workdir, opt)
            results[variant].append({'seed': seed, **evaluate(checkpoint, workdir / f'{opt["name"]}.yml')})
            print(f'[{time.time() - started:.0f}s] {variant} seed {seed}: {results[variant][-1]}', flush=True)
    summary = {name: {key: statistics.fmean(r[key] for r in runs) for key in
                      ('psnr', 'ssim', 'params', 'gmacs_per_frame_180x320')} |
               {'psnr_std': statistics.pstdev([r['psnr'] for r in runs]), 'runs': len(runs)}
               for name, runs in results.items()}
    from effsr_core.profiling.report import machine_info

    report = {'machine': machine_info(), 'command': [sys.executable, *sys.argv], 'schedule': plan,
              'seeds': args.seeds, 'wall_seconds': time.time() - started, 'summary': summary, 'runs': results}
    out = Path(args.out)
    out.with_suffix('.json').write_text(json.dumps(report, indent=2))
    out.with_suffix('.md').write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    plan = report['schedule']
    lines = [f'# SSL quality at small scale (CPU: {report["machine"]["cpu"]}, {report["machine"]["threads"]} threads)',
             '', f'Command: `{" ".join(report["command"])}`  ',
             f'Reduced BasicVSR (32 channels, 4 blocks) pretrained {plan["pretrain"]} iterations on the bundled '
             f'clips (BI x4, LR patches 32x32, 5 frames, batch 2); pruning ratio 0.5; regularisation {plan["reg"]}; '
             f'{plan["finetune"]} fine-tuning iterations for every pruned network; BasicVSR-lite '
             f'({plan["lite_feat"]} channels) trained from scratch for the whole budget. PSNR/SSIM: RGB, no crop, '
             f'4 validation clips x 100 frames, mean over seeds {report["seeds"]}.', '',
             '| network | PSNR (dB) | ± std | SSIM | params w/o SpyNet | GMACs/frame @180x320 |', '|---|---|---|---|---|---|']
    for name, s in report['summary'].items():
        lines.append(f'| {name} | {s["psnr"]:.3f} | {s["psnr_std"]:.3f} | {s["ssim"]:.4f} | {s["params"]:,.0f} '
                     f'| {s["gmacs_per_frame_180x320"]:.1f} |')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
