"""SSL efficiency on CPU: full-size BasicVSR (64 feat, 30 blocks) vs SSL-pruned networks, at LR 180x320.

Networks: the dense BasicVSR (factor-free, as BasicSR ships it), SSL plans at ratios 0.3 / 0.5 / 0.7 with kept
counts unrounded or rounded to multiples of 8 / 16 (``min_global``, the paper's criterion), a ``min_local`` plan at 0.5
(every group, pixel-shuffle groups included, pruned by half; Table 3's Min+Local), optionally ``min_global`` plans
whose pixel-shuffle groups are scored per filter (``--group-scores sum mean``), and BasicVSR-lite networks.
For each: parameters and MACs per frame with SpyNet apart (as the paper reports), and the runtime per frame of the
propagation + upsampling part (flows precomputed: SpyNet is identical in every network and timed once, apart), in
two memory formats: contiguous NCHW (what BasicSR / MMagic run) and channels-last (``model.to(memory_format=
torch.channels_last)``, faster on oneDNN CPUs). All configurations are timed in the same process in interleaved
rounds (round r times each once) and the median over rounds is reported. Speed-ups are given per format and
best-vs-best (each network in its faster format). RSC's gather / scatter is priced as its share of CPU time
(torch.profiler) in each format.

No pretrained BasicVSR can be downloaded here, so importance comes from seeded random weights: the plans have the
paper's structure and ratios, not the per-layer distribution of a trained network (with random weights the L1
score of a 4-filter pixel-shuffle group is ~4x a filter's, so ``min_global`` leaves the upsampler almost unpruned).

    python benchmarks/ssl_efficiency.py [--quick]     # writes benchmarks/results/ssl_efficiency_cpu.{json,md}
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

from effsr_core.profiling.counting import count_ops, count_parameters
from effsr_core.profiling.report import machine_info
from effsr_core.profiling.timing import interleaved_runtimes
from ssl_plugin.archs import SSLBasicVSR
from ssl_plugin.pruning.plan import PruningPlan
from ssl_plugin.options import GROUP_SCORES
from ssl_plugin.pruning.config import PruningConfig
from ssl_plugin.pruning.pruner import StructuredPruner
from training_runs import write_report_files

RESULTS = Path(__file__).parent / 'results'
FORMATS = {'nchw': torch.contiguous_format, 'channels_last': torch.channels_last}
DENSE = 'BasicVSR (dense)'


class WithFlows(nn.Module):
    """The network without SpyNet: flows computed once, outside the timed call."""

    def __init__(self, net: SSLBasicVSR, flows):
        super().__init__()
        self.net, self.flows = net, flows

    def forward(self, lqs):
        return self.net(lqs, flows=self.flows)


class FlowsOnly(nn.Module):
    def __init__(self, net: SSLBasicVSR):
        super().__init__()
        self.net = net

    def forward(self, lqs):
        return self.net.compute_flows(lqs)


def build_networks(args) -> dict[str, SSLBasicVSR]:
    torch.manual_seed(args.seed)
    trained_form = SSLBasicVSR(num_feat=64, num_block=30).eval()  # with scaling factors, as training holds it
    networks = {DENSE: trained_form.pruned(PruningPlan(arch=trained_form.config, kept={})).eval()}
    for ratio in args.ratios:
        for round_to in args.round_to:
            for group_score in args.group_scores:
                config = PruningConfig(ratio=ratio, round_to=round_to, group_score=group_score)
                name = f'SSL {ratio}' + (f' round{round_to}' if round_to else '') + (
                    f' group-{group_score}' if group_score != 'sum' else '')
                networks[name] = trained_form.pruned(StructuredPruner(config).select(trained_form)).eval()
    for round_to in args.round_to:
        plan = StructuredPruner(PruningConfig(ratio=0.5, selection='min_local', round_to=round_to)).select(trained_form)
        networks['SSL 0.5 min_local' + (f' round{round_to}' if round_to else '')] = trained_form.pruned(plan).eval()
    for num_feat in args.lite_feat:
        torch.manual_seed(args.seed)
        lite = SSLBasicVSR(num_feat=num_feat, num_block=30, upsample_feat=num_feat)
        networks[f'BasicVSR-lite {num_feat}'] = lite.pruned(PruningPlan(arch=lite.config, kept={})).eval()
    return networks


def rsc_share(module: nn.Module, lqs: torch.Tensor) -> float:
    """Fraction of CPU time in RSC's gather (index_select) and scatter (index_add) ops."""
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        module(lqs)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    rsc = sum(e.self_cpu_time_total for e in events
              if e.key in ('aten::index_select', 'aten::index_add', 'aten::index_add_'))
    return rsc / total


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    """The input and the networks (``build_networks``) of the SSL efficiency benchmarks."""
    parser.add_argument('--lr-size', default='180x320')
    parser.add_argument('--frames', type=int, default=2)
    parser.add_argument('--ratios', type=float, nargs='+', default=[0.3, 0.5, 0.7])
    parser.add_argument('--round-to', type=lambda v: None if v == 'none' else int(v), nargs='+',
                        default=[None, 8, 16])
    parser.add_argument('--lite-feat', type=int, nargs='*', default=[32, 40])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_network_arguments(parser)
    parser.add_argument('--group-scores', nargs='+', choices=GROUP_SCORES, default=['sum'],
                        help='pixel-shuffle group scores of the min_global plans (pruning.group_score)')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--quick', action='store_true', help='a small smoke run (not for the results)')
    parser.add_argument('--out', default=str(RESULTS / 'ssl_efficiency_cpu'))
    args = parser.parse_args(argv)
    if args.quick:
        args.lr_size, args.rounds, args.ratios, args.round_to, args.lite_feat = '32x48', 2, [0.5], [None, 16], [32]
    if args.threads:
        torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.lr_size.split('x'))
    lqs = torch.rand(1, args.frames, 3, h, w, generator=torch.Generator().manual_seed(args.seed))
    started = time.time()
    networks = build_networks(args)
    with torch.no_grad():
        flows = networks[DENSE].compute_flows(lqs)  # every network shares SpyNet, so the flows are the same
    rows = {}
    for name, net in networks.items():
        ops = count_ops(net, lqs, exclude=('spynet',))
        rows[name] = {'params': count_parameters(net, exclude=('spynet',)).counted,
                      'macs_per_frame': ops.counted.macs, 'spynet_macs_per_frame': ops.excluded['spynet'].macs,
                      'plan_kept_fraction': (net.plan.kept_fraction(StructuredPruner(PruningConfig()).groups(
                          networks[DENSE])) if net.plan.kept else None)}
    print(f'[{time.time() - started:.0f}s] counted {len(rows)} networks', flush=True)
    modules = {}
    for fmt, memory_format in FORMATS.items():
        for name, net in networks.items():
            twin = SSLBasicVSR(**net.config, plan=net.plan).eval()
            twin.load_state_dict(net.state_dict())
            modules[(name, fmt)] = WithFlows(twin.to(memory_format=memory_format), flows)
        modules[('SpyNet', fmt)] = FlowsOnly(SSLBasicVSR(num_feat=4, num_block=1).eval().to(
            memory_format=memory_format))
    times = interleaved_runtimes(modules, lqs, args.rounds, args.frames)
    print(f'[{time.time() - started:.0f}s] timed {len(modules)} configurations', flush=True)
    spynet = {fmt: times[('SpyNet', fmt)] for fmt in FORMATS}
    for name, row in rows.items():
        row['runtime_without_spynet'] = {fmt: times[(name, fmt)] for fmt in FORMATS}
        row['best_format'] = min(FORMATS, key=lambda fmt: times[(name, fmt)]['median_ms'])
        row['mac_reduction'] = rows[DENSE]['macs_per_frame'] / row['macs_per_frame']
        row['speedup'] = {fmt: times[(DENSE, fmt)]['median_ms'] / times[(name, fmt)]['median_ms'] for fmt in FORMATS}
        best = lambda n: min(times[(n, fmt)]['median_ms'] for fmt in FORMATS)  # noqa: E731
        row['speedup']['best_vs_best'] = best(DENSE) / best(name)
        spynet_best = min(s['median_ms'] for s in spynet.values())
        row['speedup']['best_vs_best_with_spynet'] = (best(DENSE) + spynet_best) / (best(name) + spynet_best)
        row['ms_per_gmac'] = {fmt: times[(name, fmt)]['median_ms'] / (row['macs_per_frame'] / 1e9) for fmt in FORMATS}
        if networks[name].plan.kept:
            row['rsc_time_share'] = {fmt: rsc_share(modules[(name, fmt)], lqs) for fmt in FORMATS}
    report = {'machine': machine_info(), 'command': [sys.executable, *sys.argv], 'lr_size': [h, w],
              'frames': args.frames, 'rounds': args.rounds, 'seed': args.seed, 'spynet_runtime': spynet,
              'wall_seconds': time.time() - started, 'networks': rows}
    write_report_files(Path(args.out), report, markdown)
    print(markdown(report))


def markdown(report: dict) -> str:
    m = report['machine']
    spynet = report['spynet_runtime']
    lines = [f'# SSL efficiency, CPU ({m["cpu"]}, {m["threads"]} threads, torch {m["torch"]})', '',
             f'Command: `{" ".join(report["command"])}`  ',
             f'LR {report["lr_size"][0]}x{report["lr_size"][1]}, {report["frames"]} frames per forward, per-frame '
             f'figures, median of {report["rounds"]} interleaved rounds. Runtimes exclude SpyNet (flows precomputed; '
             f'identical in every network: {spynet["nchw"]["median_ms"]:.0f} ms/frame NCHW, '
             f'{spynet["channels_last"]["median_ms"]:.0f} channels-last). Plans from seeded random weights. '
             'Ratio = speed-up / MAC reduction.', '',
             '| network | params M (w/o SpyNet) | GMACs/frame | MAC red. | ms NCHW | ms ch-last | speed-up NCHW (ratio) '
             '| speed-up ch-last (ratio) | best vs best (ratio) | same incl. SpyNet | RSC share NCHW / ch-last |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for name, r in report['networks'].items():
        rt, sp, red = r['runtime_without_spynet'], r['speedup'], r['mac_reduction']
        share = r.get('rsc_time_share')
        share_text = f'{100 * share["nchw"]:.1f}% / {100 * share["channels_last"]:.1f}%' if share else '-'
        lines.append(
            f'| {name} | {r["params"] / 1e6:.3f} | {r["macs_per_frame"] / 1e9:.1f} | {red:.2f}x '
            f'| {rt["nchw"]["median_ms"]:.0f} | {rt["channels_last"]["median_ms"]:.0f} '
            f'| {sp["nchw"]:.2f}x ({sp["nchw"] / red:.2f}) | {sp["channels_last"]:.2f}x ({sp["channels_last"] / red:.2f}) '
            f'| {sp["best_vs_best"]:.2f}x ({sp["best_vs_best"] / red:.2f}) | {sp["best_vs_best_with_spynet"]:.2f}x '
            f'| {share_text} |')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
