"""SSL quality at small scale on the bundled clips (BI x4), through BasicSR's own pipeline.

1. Pretrain a reduced BasicVSR (``SSLBasicVSR``, 32 channels, 4 blocks per branch, dense) on the training clips.
2. From that checkpoint, at ratio 0.5 and for each seed: SSL with TF (Eq. 6 as written at loss weights 1, 0.1, 0.01
   and 0.001, and with an element-mean squared distance), SSL without TF (pixel-shuffle groups scored by their L1
   sum, and per filter: ``SSL-group-mean``), L1-norm (one-shot), ASSL
   (aligned) — each fine-tuned for the same number of iterations (SSL / ASSL regularise first) — and BasicVSR-lite
   (uniformly narrower, trained from scratch for pretraining + regularisation + fine-tuning iterations); as the
   reference, the unpruned network trained on for the regularisation + fine-tuning iterations (dense+FT).
3. PSNR / SSIM (RGB, no border crop) on the four REDS4-style validation clips (all 100 frames), averaged over seeds.
4. The latency of every network (its first seed's checkpoint; SpyNet included) at LR 180x320, 2 frames per forward,
   in interleaved rounds after all training (``--latency-rounds``), and the paper's Fig. 4: PSNR against MACs and
   against measured latency (``ssl_quality_cpu.png``; ``--redraw`` draws it again from the results file).

Finished runs (and their scores) in the work folder are reused when their options are unchanged.

    python benchmarks/ssl_quality.py [--seeds 0 1 2] [--quick]  # benchmarks/results/ssl_quality_cpu.{json,md,png}
    python benchmarks/ssl_quality.py --redraw                    # the PNG again from the committed JSON
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch
import yaml
from training_runs import REPO, evaluated, prepare_workdir, run, seed_summary, video_quality, write_report_files

RESULTS = Path(__file__).parent / 'results'
LATENCY_LR_SIZE, LATENCY_FRAMES = (180, 320), 2
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


def measure_latency(workdir: Path, results: dict, rounds: int) -> dict:
    """ms per frame of each network (its first run's checkpoint, SpyNet included), in interleaved rounds."""
    from effsr_core.networks import build_model_from_options
    from effsr_core.profiling.timing import interleaved_runtimes

    networks = {}
    for variant, runs in results.items():
        name = 'pretrain_BasicVSR_32x4' if variant == 'pretrained (dense)' else runs[0]['name']
        checkpoint = workdir / 'experiments' / name / 'models' / 'net_g_latest.pth'
        networks[variant] = build_model_from_options(workdir / f'{name}.yml', checkpoint).eval()
    inputs = torch.rand(1, LATENCY_FRAMES, 3, *LATENCY_LR_SIZE, generator=torch.Generator().manual_seed(0))
    timed = interleaved_runtimes(networks, inputs, rounds, frames=LATENCY_FRAMES)
    return {'lr_size': list(LATENCY_LR_SIZE), 'frames': LATENCY_FRAMES, 'rounds': rounds, 'threads':
            torch.get_num_threads(), 'ms_per_frame': {variant: t['median_ms'] for variant, t in timed.items()},
            'runs_ms': {variant: t['runs_ms'] for variant, t in timed.items()}}


def is_results_file(report: dict) -> bool:
    """Whether ``report`` is this benchmark's results file (a summary of PSNR and MACs per network)."""
    summary = report.get('summary')
    return (isinstance(summary, dict) and bool(summary) and 'schedule' in report
            and all(isinstance(s, dict) and {'psnr', 'gmacs_per_frame_180x320'} <= set(s) for s in summary.values()))


def draw(report: dict, png_path: Path) -> Path:
    """The paper's Fig. 4 at small scale: PSNR against GMACs per frame and against measured ms per frame."""
    from effsr_core.plotting import figure

    summary, latency = report['summary'], report.get('latency')
    with figure(png_path, 1, 2, figsize=(10, 4.2), dpi=120) as (_, (by_macs, by_ms)):
        for ax, cost, label in ((by_macs, lambda name: summary[name]['gmacs_per_frame_180x320'],
                                 'GMACs per frame at 180x320 (SpyNet apart)'),
                                (by_ms, latency and (lambda name: latency['ms_per_frame'].get(name)),
                                 'measured ms per frame at 180x320 (SpyNet included)')):
            ax.set_xlabel(label)
            ax.set_ylabel('PSNR (dB), 4 clips x 100 frames')
            if cost is None:
                ax.text(0.5, 0.5, 'latency not measured in this results file\n(python benchmarks/ssl_quality.py)',
                        ha='center', va='center', transform=ax.transAxes)
                continue
            for name, s in summary.items():
                if (x := cost(name)) is None:
                    continue
                ax.errorbar(x, s['psnr'], yerr=s['psnr_std'], fmt='o', capsize=3)
                ax.annotate(name, (x, s['psnr']), textcoords='offset points', xytext=(4, 4), fontsize=7)
        by_macs.set_title('quality against MACs')
        by_ms.set_title('quality against latency' + (f' ({latency["threads"]} threads)' if latency else ''))
    return png_path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--variants', nargs='+', choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument('--workdir', default=str(REPO / 'benchmarks/work/ssl_quality'))
    parser.add_argument('--quick', action='store_true', help='a few iterations only (smoke run, not for results)')
    parser.add_argument('--latency-rounds', type=int, default=5,
                        help='interleaved timing rounds of every network after training (default 5; 0: skip)')
    parser.add_argument('--out', default=str(RESULTS / 'ssl_quality_cpu'))
    parser.add_argument('--redraw', action='store_true', help='only draw the PNG again from the JSON at --out')
    args = parser.parse_args(argv)
    if args.redraw:
        path = Path(args.out).with_suffix('.json')
        report = json.loads(path.read_text()) if path.exists() else {}
        if not is_results_file(report):
            parser.error(f'argument --out: {path} is not a results file of ssl_quality.py')
        print(draw(report, Path(args.out).with_suffix('.png')))
        return
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
            results[variant].append({'seed': seed, 'name': opt['name'],
                                     **evaluated(workdir, opt['name'], checkpoint, evaluate)})
            print(f'[{time.time() - started:.0f}s] {variant} seed {seed}: {results[variant][-1]}', flush=True)
            report = write_report(Path(args.out), results, plan, args.seeds, time.time() - started)
    if args.latency_rounds:
        print(f'[{time.time() - started:.0f}s] timing {len(results)} networks, {args.latency_rounds} rounds',
              flush=True)
        latency = measure_latency(workdir, {v: runs for v, runs in results.items() if runs}, args.latency_rounds)
        report = write_report(Path(args.out), results, plan, args.seeds, time.time() - started, latency)
    draw(report, Path(args.out).with_suffix('.png'))
    print(markdown(report))


def write_report(out: Path, results: dict, plan: dict, seeds: list, wall_seconds: float,
                 latency: dict | None = None) -> dict:
    """Summarise the runs so far (mean over the seeds finished) and write the JSON and markdown reports."""
    from effsr_core.profiling.report import machine_info

    report = {'machine': machine_info(), 'command': [sys.executable, *sys.argv], 'schedule': plan,
              'seeds': seeds, 'wall_seconds': wall_seconds, 'runs': results,
              'summary': seed_summary(results, ('psnr', 'ssim', 'params', 'gmacs_per_frame_180x320')),
              'latency': latency, 'png': out.with_suffix('.png').name}
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
             '| network | runs | PSNR (dB) | ± std | SSIM | params w/o SpyNet | GMACs/frame @180x320 '
             '| ms/frame @180x320 |',
             '|---|---|---|---|---|---|---|---|']
    latency = (report.get('latency') or {}).get('ms_per_frame', {})
    for name, s in report['summary'].items():
        ms = f'{latency[name]:.0f}' if name in latency else 'not measured'
        lines.append(f'| {name} | {s["runs"]} | {s["psnr"]:.3f} | {s["psnr_std"]:.3f} | {s["ssim"]:.4f} '
                     f'| {s["params"]:,.0f} | {s["gmacs_per_frame_180x320"]:.1f} | {ms} |')
    if report.get('latency'):
        t = report['latency']
        lines += ['', f'ms/frame: SpyNet included, {t["frames"]} frames per forward, median of {t["rounds"]} '
                      f'interleaved rounds after all training, {t["threads"]} threads.']
    if report.get('png'):
        lines += ['', f'![PSNR against MACs and latency]({report["png"]})']
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
