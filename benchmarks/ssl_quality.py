"""SSL quality at small scale on the bundled clips (BI x4), through BasicSR's own pipeline.

1. Pretrain a reduced BasicVSR (``SSLBasicVSR``, 32 channels, 4 blocks per branch, dense) on the training clips.
2. From that checkpoint, at ratio 0.5 and for each seed: SSL with TF (Eq. 6 as written at loss weights 1, 0.1, 0.01
   and 0.001, and with an element-mean squared distance), SSL without TF (pixel-shuffle groups scored by their L1
   sum, and per filter: ``SSL-group-mean``), L1-norm (one-shot), ASSL
   (aligned) — each fine-tuned for the same number of iterations (SSL / ASSL regularise first) — and BasicVSR-lite
   (uniformly narrower, trained from scratch for pretraining + regularisation + fine-tuning iterations); as the
   reference, the unpruned network trained on for the regularisation + fine-tuning iterations (dense+FT).
3. PSNR / SSIM (RGB, no border crop) on the four REDS4-style validation clips (all 100 frames), averaged over seeds.

Finished runs (and their scores) in the work folder are reused when their options are unchanged.

    python benchmarks/ssl_quality.py [--seeds 0 1 2] [--quick]   # writes benchmarks/results/ssl_quality_cpu.{json,md}
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch
import yaml
from training_runs import REPO, evaluated, prepare_workdir, run, seed_summary, video_quality, write_report_files

RESULTS = Path(__file__).parent / 'results'
TEMPLATE = REPO / 'options/basicsr/ssl/demo_SSL_BasicVSR_tiny_offline.yml'
#: SSL+TF-w<x>: Temporal Finetuning with loss_weight x (Eq. 6's norms dwarf Charbonnier at weight 1);
#: SSL-group-mean: pixel-shuffle groups scored per filter (pruning.group_score: mean), no TF, to compare with SSL.
TF_WEIGHTS = {'SSL+TF': 1.0, 'SSL+TF-w0.1': 0.1, 'SSL+TF-w0.01': 0.01, 'SSL+TF-w0.001': 0.001}
VARIANTS = (*TF_WEIGHTS, 'SSL+TF-mse', 'SSL', 'SSL-group-mean', 'L1-norm', 'ASSL', 'BasicVSR-lite', 'dense+FT')


def schedule(quick: bool) -> dict:
    if quick:
        return dict(pretrain=4, reg=dict(delta=0.05, tau=0.1, t1=1, t2=1), finetune=4)
    # About 2 hours on 2 CPU cores (~0.55 s per training iteration), most of it BasicVSR-lite's 1,600 iterations.
    return dict(pretrain=1200, reg=dict(delta=0.01, tau=0.1, t1=5, t2=50), finetune=300)


def base_options(workdir: Path, name: str, seed: int) -> dict:
    opt = yaml.safe_load(TEMPLATE.read_text())
    opt['name'], opt['manual_seed'] = name, seed
    # The demo template is sized for the main job's time budget; pin what these results were measured with.
    opt['datasets']['train'].update(num_worker_per_gpu=1, num_frame=5, gt_size=128, batch_size_per_gpu=2)
    opt['train']['factor_lr_mul'] = 100
    opt.pop('val')  # evaluated afterwards on the full clips, the same way for every network
    opt['datasets'].pop('val')
    opt['logger'].update(print_freq=50, save_checkpoint_freq=100000, use_tb_logger=False)
    opt['network_g'].update(num_feat=32, num_block=4, upsample_feat=32)
    return opt


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
    method = 'ssl' if variant.startswith('SSL') else {'L1-norm': 'l1_norm', 'ASSL': 'assl'}.get(variant)
    if variant == 'dense+FT':  # the unpruned network trained on for the same budget: the reference to compare with
        opt['model_type'] = 'VideoRecurrentModel'
        opt.pop('pruning')
        opt['train'].pop('tf_opt')
        opt['train'].update(total_iter=reg_iters + plan['finetune'], factor_lr_mul=1)
        opt['train']['scheduler']['periods'] = [reg_iters + plan['finetune']]
        return opt
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
    if variant == 'SSL-group-mean':
        opt['pruning']['group_score'] = 'mean'
    regularised = method != 'l1_norm'
    opt['train']['total_iter'] = plan['finetune'] + (reg_iters if regularised else 0)
    if variant == 'SSL+TF-mse':  # element mean of the squared difference: a term on Charbonnier's scale
        opt['train']['tf_opt'].update(norm='mse', loss_weight=1.0)
    elif variant in TF_WEIGHTS:
        opt['train']['tf_opt'].update(norm='l2', loss_weight=TF_WEIGHTS[variant])
    else:
        opt['train'].pop('tf_opt')
    return opt


def evaluate(checkpoint: Path, options_path: Path) -> dict:
    from effsr_core.profiling.counting import count_parameters

    model, quality = video_quality(checkpoint, options_path)
    return {**quality, 'params': count_parameters(model, ('spynet',)).counted,
            'gmacs_per_frame_180x320': gmacs_per_frame(model)}


def gmacs_per_frame(model: torch.nn.Module) -> float:
    from effsr_core.profiling.counting import count_ops

    return count_ops(model, torch.rand(1, 3, 3, 180, 320), exclude=('spynet',)).counted.macs / 1e9


def matched_lite_width(target_gmacs: float) -> int:
    """The BasicVSR-lite width (multiple of 2) whose MACs per frame come closest to the pruned network's."""
    from ssl_plugin.archs.ssl_basicvsr_arch import SSLBasicVSR

    cost = {width: gmacs_per_frame(SSLBasicVSR(num_feat=width, num_block=4, upsample_feat=width))
            for width in range(8, 33, 2)}
    return min(cost, key=lambda width: abs(cost[width] - target_gmacs))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--variants', nargs='+', choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument('--workdir', default=str(REPO / 'benchmarks/work/ssl_quality'))
    parser.add_argument('--quick', action='store_true', help='a few iterations only (smoke run, not for results)')
    parser.add_argument('--out', default=str(RESULTS / 'ssl_quality_cpu'))
    args = parser.parse_args(argv)
    workdir = prepare_workdir(args.workdir)
    plan = schedule(args.quick)
    started = time.time()
    pretrained = pretrain(workdir, plan)
    print(f'[{time.time() - started:.0f}s] pretrained {pretrained}', flush=True)
    results = {'pretrained (dense)': [evaluated(workdir, 'pretrain_BasicVSR_32x4', pretrained, evaluate)]}
    results.update({variant: [] for variant in args.variants})
    for seed in args.seeds:  # seed-major, so that an interrupted run still covers every variant
        for variant in args.variants:
            if variant == 'BasicVSR-lite' and 'lite_feat' not in plan:  # as many MACs as the first SSL network
                ssl_runs = next((results[v] for v in results if v.startswith('SSL') and results[v]), None)
                if not ssl_runs:
                    parser.error('--variants: BasicVSR-lite is sized after an SSL run; list SSL+TF or SSL first')
                plan['lite_feat'] = matched_lite_width(ssl_runs[0]['gmacs_per_frame_180x320'])
            opt = variant_options(workdir, variant, seed, pretrained, plan)
            checkpoint = run(workdir, opt)
            results[variant].append({'seed': seed, **evaluated(workdir, opt['name'], checkpoint, evaluate)})
            print(f'[{time.time() - started:.0f}s] {variant} seed {seed}: {results[variant][-1]}', flush=True)
            report = write_report(Path(args.out), results, plan, args.seeds, time.time() - started)
    print(markdown(report))


def write_report(out: Path, results: dict, plan: dict, seeds: list, wall_seconds: float) -> dict:
    """Summarise the runs so far (mean over the seeds finished) and write the JSON and markdown reports."""
    from effsr_core.profiling.report import machine_info

    report = {'machine': machine_info(), 'command': [sys.executable, *sys.argv], 'schedule': plan,
              'seeds': seeds, 'wall_seconds': wall_seconds, 'runs': results,
              'summary': seed_summary(results, ('psnr', 'ssim', 'params', 'gmacs_per_frame_180x320'))}
    return write_report_files(out, report, markdown)


def markdown(report: dict) -> str:
    plan = report['schedule']
    lines = [f'# SSL quality at small scale (CPU: {report["machine"]["cpu"]}, {report["machine"]["threads"]} threads)',
             '', f'Command: `{" ".join(report["command"])}`  ',
             f'Reduced BasicVSR (32 channels, 4 blocks) pretrained {plan["pretrain"]} iterations on the bundled '
             f'clips (BI x4, LR patches 32x32, 5 frames, batch 2); pruning ratio 0.5; regularisation {plan["reg"]}; '
             f'{plan["finetune"]} fine-tuning iterations for every pruned network; BasicVSR-lite '
             f'({plan.get("lite_feat", "?")} channels: the width whose MACs come closest to the first SSL run) '
             f'trained from scratch for the whole budget; dense+FT: the unpruned network trained on for as many '
             f'iterations as SSL gets after pretraining (what the extra training alone buys); SSL+TF: TF as Eq. 6 '
             f'(Frobenius norms) at loss weight 1, SSL+TF-w<x> at weight x; SSL+TF-mse: TF with the element mean of '
             f'squared differences instead of Eq. 6\'s norms; SSL-group-mean: pixel-shuffle groups scored per filter '
             f'(pruning.group_score: mean), no TF. PSNR/SSIM: RGB, no crop, '
             f'4 validation clips x 100 frames, mean over seeds {report["seeds"]} (column "runs": seeds finished). '
             f'Wall time of the invocation that wrote this: {report["wall_seconds"] / 60:.0f} min.', '',
             '| network | runs | PSNR (dB) | ± std | SSIM | params w/o SpyNet | GMACs/frame @180x320 |',
             '|---|---|---|---|---|---|---|']
    for name, s in report['summary'].items():
        lines.append(f'| {name} | {s["runs"]} | {s["psnr"]:.3f} | {s["psnr_std"]:.3f} | {s["ssim"]:.4f} '
                     f'| {s["params"]:,.0f} | {s["gmacs_per_frame_180x320"]:.1f} |')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
