"""Latency-targeted SSL (``pruning.latency``) against the ratio plans: target, predicted and measured speed-up.

Full-size BasicVSR (64 feat, 30 blocks, seeded random weights: the latency does not depend on the values, the
selection's spread over the groups does; a trained network would rank differently), one backend. Plans: SSL at
ratio 0.5 (unrounded and round_to 16) and SSL with a speed-up target of 2.0x and 3.0x (the selection measures the
cost table it needs, kept in the results folder with its key); the dense BasicVSR-lite 40 for ms per GMAC. Every
network is then timed whole (SpyNet included), all in interleaved rounds, median per frame, and compared with the
dense network: measured speed-up, MAC reduction (conv MACs from the traced forward), their ratio, ms per GMAC.

    python benchmarks/ssl_latency_target.py [--quick]   # writes benchmarks/results/ssl_latency_target_cpu.{json,md}
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from effsr_core.cost_model import CostTable, get_backend, predict_latency, trace_network
from effsr_core.profiling.report import machine_info
from effsr_core.profiling.timing import interleaved_runtimes
from ssl_plugin.archs import SSLBasicVSR
from ssl_plugin.pruning.config import LatencyTarget, PruningConfig
from ssl_plugin.pruning.latency import LatencyModel
from ssl_plugin.pruning.plan import PruningPlan
from ssl_plugin.pruning.pruner import StructuredPruner
from training_runs import write_report_files

RESULTS = Path(__file__).parent / 'results'


def conv_gmacs(network, input_shape, backend) -> float:
    """Multiply-accumulates of the forward's convs per output frame, in GMACs, read from its traced calls."""
    trace = trace_network(network, input_shape, backend)
    total = 0
    for layer in trace.conv_layers():
        kh, kw = layer['kernel']
        sh, sw = layer['stride']
        total += (layer['batch'] * layer['out_channels'] * layer['in_channels'] // layer['groups'] * kh * kw
                  * (layer['height'] // sh) * (layer['width'] // sw))
    return total / trace.frames / 1e9


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--backend', default='eager-channels_last')
    parser.add_argument('--lr-size', default='180x320')
    parser.add_argument('--frames', type=int, default=4)
    parser.add_argument('--blocks', type=int, default=30)
    parser.add_argument('--targets', type=float, nargs='+', default=[2.0, 3.0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--quick', action='store_true', help='a small smoke run (not for the results)')
    parser.add_argument('--out', default=str(RESULTS / 'ssl_latency_target_cpu'))
    args = parser.parse_args(argv)
    if args.quick:
        args.lr_size, args.blocks, args.rounds, args.frames, args.targets = '24x32', 2, 2, 2, [1.5]
    h, w = (int(v) for v in args.lr_size.split('x'))
    backend = get_backend(args.backend)
    out = Path(args.out)
    table_path = out.parent / f'{out.name}_table_{args.backend}.json'
    started = time.time()
    torch.manual_seed(args.seed)
    trained = SSLBasicVSR(num_feat=64, num_block=args.blocks).eval()
    networks = {'BasicVSR dense': trained.pruned(PruningPlan(arch=trained.config, kept={}))}
    plans = {}
    for round_to in (None, 16):
        plan = StructuredPruner(PruningConfig(ratio=0.5, round_to=round_to)).select(trained)
        plans['SSL 0.5' + (f' round{round_to}' if round_to else '')] = plan
    for speedup in args.targets:
        target = LatencyTarget(speedup=speedup, backend=args.backend, lr_size=(h, w), frames=args.frames,
                               table=str(table_path))
        config = PruningConfig(latency=target)
        selecting = time.time()
        plan = StructuredPruner(config, LatencyModel(target)).select(trained)
        plan_seconds = time.time() - selecting
        plans[f'SSL latency {speedup:g}x'] = plan
        print(f'[{time.time() - started:.0f}s] target {speedup:g}x: predicted '
              f'{plan.extra["latency"]["predicted_speedup"]:.3f}x, ratio {plan.ratio:.4f} ({plan_seconds:.0f} s)',
              flush=True)
    for key, plan in plans.items():
        networks[key] = trained.pruned(plan)
    torch.manual_seed(args.seed)
    networks['BasicVSR-lite 40'] = SSLBasicVSR(num_feat=40, num_block=args.blocks, upsample_feat=40).pruned(
        PruningPlan(arch={'num_feat': 40, 'num_block': args.blocks, 'bidirectional': True, 'upsample_feat': 40},
                    kept={}))
    shape = (1, args.frames, 3, h, w)
    prepared = {key: backend.prepare(net.eval()) for key, net in networks.items()}
    gmacs = {key: conv_gmacs(net, shape, backend) for key, net in prepared.items()}
    table = CostTable.open(backend, table_path)
    where = {}  # where the predicted time goes, per op, in ms per frame
    for key, net in prepared.items():
        prediction = predict_latency(net, shape, table)
        where[key] = {op.rsplit('.', 1)[-1]: ms / prediction.frames for op, ms in
                      sorted(prediction.by_op.items(), key=lambda item: -item[1])[:6]}
    inputs = torch.rand(shape, generator=torch.Generator().manual_seed(args.seed)).to(backend.torch_device)
    print(f'[{time.time() - started:.0f}s] timing {len(prepared)} networks, {args.rounds} rounds', flush=True)
    measured = interleaved_runtimes(prepared, inputs, args.rounds, frames=args.frames)
    dense_ms, dense_gmacs = measured['BasicVSR dense']['median_ms'], gmacs['BasicVSR dense']
    rows = {}
    for key in prepared:
        ms = measured[key]['median_ms']
        plan = plans.get(key)
        latency = (plan.extra.get('latency') if plan is not None else None) or {}
        rows[key] = {'measured_ms': ms, 'runs_ms': measured[key]['runs_ms'], 'gmacs': gmacs[key],
                     'speedup': dense_ms / ms, 'mac_reduction': dense_gmacs / gmacs[key],
                     'ms_per_gmac': ms / gmacs[key], 'ratio': None if plan is None else plan.ratio,
                     'target_speedup': latency.get('speedup'), 'predicted_speedup': latency.get('predicted_speedup'),
                     'predicted_ms': latency.get('predicted_ms'), 'predicted_top_ops_ms': where[key]}
        rows[key]['speedup_over_mac_reduction'] = rows[key]['speedup'] / rows[key]['mac_reduction']
    report = {'machine': machine_info(), 'command': [sys.executable, *sys.argv], 'backend': args.backend,
              'lr_size': [h, w], 'frames': args.frames, 'rounds': args.rounds, 'seed': args.seed,
              'table': table_path.name, 'networks': rows, 'wall_seconds': time.time() - started}
    write_report_files(out, report, markdown)
    print(markdown(report))


def markdown(report: dict) -> str:
    m = report['machine']
    h, w = report['lr_size']
    lines = [f'# Latency-targeted SSL ({m["cpu"]}, {m["threads"]} threads, torch {m["torch"]}, {report["backend"]})',
             '', f'Command: `{" ".join(report["command"])}`  ',
             f'Full-size BasicVSR, seeded random weights, LR {h}x{w}, {report["frames"]} frames per forward, per-frame '
             f'figures; measured = median of {report["rounds"]} interleaved rounds of the whole forward (SpyNet '
             f'included); speed-up and MAC reduction against the dense network; cost table {report["table"]}. Wall '
             f'time {report["wall_seconds"] / 60:.1f} min.', '',
             '| network | ratio | target | predicted | measured ms | speed-up | MAC reduction | speed-up / MACs | '
             'ms/GMAC |', '|---|---|---|---|---|---|---|---|---|']
    for key, row in report['networks'].items():
        fmt = lambda v, spec='.3f', unit='': '' if v is None else f'{v:{spec}}{unit}'  # noqa: E731
        lines.append(f'| {key} | {fmt(row["ratio"], ".4f")} | {fmt(row["target_speedup"], "g", "x")} | '
                     f'{fmt(row["predicted_speedup"], ".2f", "x")} | {row["measured_ms"]:.0f} | '
                     f'{row["speedup"]:.2f}x | {row["mac_reduction"]:.2f}x | {row["speedup_over_mac_reduction"]:.2f} | '
                     f'{row["ms_per_gmac"]:.1f} |')
    lines += ['', 'Where the predicted time goes (ms per frame, the six largest ops; cost table above):', '']
    for key, row in report['networks'].items():
        lines.append(f'- {key}: ' + ', '.join(f'{op} {ms:.1f}' for op, ms in row['predicted_top_ops_ms'].items()))
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
