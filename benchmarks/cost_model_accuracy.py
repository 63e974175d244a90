"""Accuracy of the device cost model (``effsr_core.cost_model``): predicted vs measured whole-network latency.

Per backend (eager NCHW and eager channels-last on the CPU; the CUDA ones too with ``--cuda`` where a GPU is
present), a fresh cost table is measured for the calls of every network (each distinct call replayed alone, median
of timed calls after warm-up) and each network's latency is predicted as the sum of its calls' entries. Nothing is
fitted to the networks, so every one is held apart. The whole forward is then measured (SpyNet included), all
networks of a backend in interleaved rounds, median per frame, and compared.

Networks (seeded random weights; SSL plans by ``PruningConfig`` + ``StructuredPruner`` as in ssl_efficiency.py):
full-size BasicVSR (64 feat, 30 blocks) dense, a small dense BasicVSR (64 feat, 10 blocks), SSL plans at ratios
0.3 / 0.5 / 0.7 unrounded and rounded to 16, BasicVSR-lite 32 / 40, two MemSR plain networks (a uniform width and
Plain-X-like odd per-layer widths) and RFDN. Video networks see (1, frames, 3, h, w), image networks (1, 3, h, w).

    python benchmarks/cost_model_accuracy.py [--quick]   # writes benchmarks/results/cost_model_accuracy_cpu.{json,md}
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from effsr_core.archs.rfdn_arch import RFDN
from effsr_core.cost_model import CostTable, get_backend, predict_calls, trace_network
from effsr_core.profiling.report import machine_info
from effsr_core.profiling.timing import interleaved_runtimes
from memsr_plugin.archs.plain_arch import PlainConvSR
from ssl_plugin.archs import SSLBasicVSR
from ssl_plugin.pruning.config import PruningConfig
from ssl_plugin.pruning.plan import PruningPlan
from ssl_plugin.pruning.pruner import StructuredPruner
from training_runs import write_report_files

RESULTS = Path(__file__).parent / 'results'
#: Plain-X-like per-layer widths (the shape of MemSR's dynamic widths, odd ones included), x4 output
PLAIN_X_WIDTHS = [25, 32, 26, 42, 27, 54, 33, 63, 40, 70, 45, 74, 49, 64, 48]


def _dense(net: SSLBasicVSR) -> SSLBasicVSR:
    return net.pruned(PruningPlan(arch=net.config, kept={})).eval()


def _plain(widths: list[int]) -> PlainConvSR:
    return PlainConvSR(3, widths + [48], acts=['relu'] * len(widths) + ['identity'],
                       shuffles=[1] * len(widths) + [4]).eval()


def video_networks(args) -> dict[str, nn.Module]:
    torch.manual_seed(args.seed)
    trained = SSLBasicVSR(num_feat=64, num_block=args.blocks).eval()
    networks = {'BasicVSR dense': _dense(trained)}
    torch.manual_seed(args.seed)
    networks['BasicVSR dense 10 blocks'] = _dense(SSLBasicVSR(num_feat=64, num_block=min(10, args.blocks)))
    for ratio in args.ratios:
        for round_to in (None, 16):
            plan = StructuredPruner(PruningConfig(ratio=ratio, round_to=round_to)).select(trained)
            networks[f'SSL {ratio}' + (f' round{round_to}' if round_to else '')] = trained.pruned(plan).eval()
    for feat in args.lite_feat:
        torch.manual_seed(args.seed)
        networks[f'BasicVSR-lite {feat}'] = _dense(SSLBasicVSR(num_feat=feat, num_block=args.blocks,
                                                               upsample_feat=feat))
    return networks


def image_networks(args) -> dict[str, nn.Module]:
    torch.manual_seed(args.seed)
    return {'PlainConvSR 32 x 12': _plain([32] * 12), 'PlainConvSR Plain-X widths': _plain(PLAIN_X_WIDTHS),
            'RFDN 50': RFDN(num_feat=50, num_blocks=4).eval()}


def evaluate_backend(name: str, groups: dict, rounds: int, table_dir: Path) -> dict:
    """Table, predictions and interleaved measurements of every network under backend ``name``."""
    backend = get_backend(name)
    table = CostTable.open(backend, table_dir / f'{name}.json')
    started = time.time()
    rows = {}
    for inputs, networks in groups.values():
        prepared = {key: backend.prepare(net) for key, net in networks.items()}
        for key, net in prepared.items():
            trace = trace_network(net, inputs.shape, backend)
            prediction = predict_calls(trace.calls, table, trace.frames, trace.unreplayable)
            convs = sum(ms for op, ms in prediction.by_op.items() if op.endswith('conv2d'))
            rows[key] = {'predicted_ms': prediction.per_frame_ms, 'calls': prediction.calls,
                         'unreplayable': list(prediction.unreplayable),
                         'conv_share': convs / prediction.total_ms,
                         'top_ops_ms': dict(sorted(((op, ms / prediction.frames) for op, ms in prediction.by_op.items()),
                                                   key=lambda item: -item[1])[:6])}
        print(f'[{name}] {time.time() - started:.0f}s: predicted {len(rows)} networks, table {len(table)} entries',
              flush=True)
        measured = interleaved_runtimes(prepared, inputs.to(backend.torch_device), rounds,
                                        frames=trace.frames)
        for key, times in measured.items():
            rows[key]['measured_ms'] = times['median_ms']
            rows[key]['measured_runs_ms'] = times['runs_ms']
            rows[key]['error'] = rows[key]['predicted_ms'] / times['median_ms'] - 1.0
        print(f'[{name}] {time.time() - started:.0f}s: measured', flush=True)
    errors = [abs(row['error']) for row in rows.values()]
    return {'key': table.key, 'table_entries': len(table), 'networks': rows,
            'median_abs_error': statistics.median(errors), 'max_abs_error': max(errors),
            'wall_seconds': time.time() - started}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--lr-size', default='90x160')
    parser.add_argument('--frames', type=int, default=2)
    parser.add_argument('--blocks', type=int, default=30)
    parser.add_argument('--ratios', type=float, nargs='+', default=[0.3, 0.5, 0.7])
    parser.add_argument('--lite-feat', type=int, nargs='*', default=[32, 40])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--cuda', action='store_true', help='also the CUDA backends (needs a GPU)')
    parser.add_argument('--table-dir', default=None, help='keep the cost tables here (default: a temporary folder, '
                                                          'so every entry is measured in this run)')
    parser.add_argument('--quick', action='store_true', help='a small smoke run (not for the results)')
    parser.add_argument('--out', default=str(RESULTS / 'cost_model_accuracy_cpu'))
    args = parser.parse_args(argv)
    if args.quick:
        args.lr_size, args.rounds, args.blocks, args.ratios, args.lite_feat = '24x32', 2, 2, [0.5], [32]
    if args.threads:
        torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.lr_size.split('x'))
    generator = torch.Generator().manual_seed(args.seed)
    groups = {'video': (torch.rand(1, args.frames, 3, h, w, generator=generator), video_networks(args)),
              'image': (torch.rand(1, 3, h, w, generator=generator), image_networks(args))}
    backends = ['eager-nchw', 'eager-channels_last'] + (['cuda-eager-nchw', 'cuda-eager-channels_last']
                                                        if args.cuda else [])
    started = time.time()
    report = {'machine': machine_info(), 'command': [sys.executable, *sys.argv], 'lr_size': [h, w],
              'frames': args.frames, 'rounds': args.rounds, 'seed': args.seed, 'backends': {}}
    with tempfile.TemporaryDirectory(prefix='effsr_cost_tables_') as scratch:
        table_dir = Path(args.table_dir or scratch)
        for name in backends:
            report['backends'][name] = evaluate_backend(name, groups, args.rounds, table_dir)
            report['wall_seconds'] = time.time() - started
            write_report_files(Path(args.out), report, markdown)
    print(markdown(report))


def markdown(report: dict) -> str:
    m = report['machine']
    h, w = report['lr_size']
    lines = [f'# Cost model accuracy ({m["cpu"]}, {m["threads"]} threads, torch {m["torch"]})', '',
             f'Command: `{" ".join(report["command"])}`  ',
             f'LR {h}x{w}; video networks see {report["frames"]} frames per forward, image networks one image; '
             f'per-frame figures. Measured = median of {report["rounds"]} interleaved rounds of the whole forward '
             f'(SpyNet included); predicted = sum of the cost-table entries of the calls the forward makes (table '
             f'measured in the same run; nothing fitted, every network held apart). Error = predicted / measured - 1. '
             f'Wall time {report.get("wall_seconds", 0) / 60:.1f} min.', '']
    for name, result in report['backends'].items():
        lines += [f'## {name}: median |error| {100 * result["median_abs_error"]:.1f}%, max '
                  f'{100 * result["max_abs_error"]:.1f}% ({len(result["networks"])} networks, '
                  f'{result["table_entries"]} table entries)', '',
                  f'Key: {", ".join(f"{k}={v}" for k, v in result["key"].items())}', '',
                  '| network | calls/forward | conv share | predicted ms | measured ms | error |', '|---|---|---|---|---|---|']
        for key, row in result['networks'].items():
            lines.append(f'| {key} | {row["calls"]} | {100 * row["conv_share"]:.0f}% | {row["predicted_ms"]:.1f} '
                         f'| {row["measured_ms"]:.1f} | {100 * row["error"]:+.1f}% |')
        lines.append('')
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
