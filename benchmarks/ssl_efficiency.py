"""SSL efficiency on CPU: full-size BasicVSR (64 feat, 30 blocks) vs SSL-pruned at several ratios, at LR 180x320.

For each network: parameters and MACs per frame (SpyNet apart, as the paper reports), and runtime per frame, both
of the whole network and of the propagation + upsampling part alone (flows precomputed, so the unpruned SpyNet does
not dilute the comparison). All networks are timed in the same process, in interleaved rounds (round r times every
network once), and the median over rounds is reported. Two ways to price RSC's gather / scatter:
  * the share of ``index_select`` / ``index_add`` in the compact network's CPU time (torch.profiler);
  * runtime per GMAC of the compact network vs a uniformly narrower dense BasicVSR (BasicVSR-lite) of about the
    same MACs.

No pretrained BasicVSR can be downloaded here, so importance comes from randomly initialised weights (seeded):
the plans have the paper's structure and ratios, not the per-layer distribution a trained network would give.

    python benchmarks/ssl_efficiency.py [--quick]     # writes benchmarks/results/ssl_efficiency_cpu.{json,md}
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from effsr_core.profiling.counting import count_ops, count_parameters
from effsr_core.profiling.report import machine_info
from effsr_core.profiling.timing import time_forward_ms
from ssl_plugin.archs import SSLBasicVSR
from ssl_plugin.pruning.pruner import PruningConfig, StructuredPruner

RESULTS = Path(__file__).parent / 'results'


class WithFlows(nn.Module):
    """Times the network without SpyNet: the flows are computed once, outside the timed call."""

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
    dense = SSLBasicVSR(num_feat=64, num_block=30).eval()
    networks = {'BasicVSR (dense)': dense}
    for ratio in args.ratios:
        for round_to in args.round_to:
            config = PruningConfig(ratio=ratio, round_to=round_to)
            plan = StructuredPruner(config).select(dense)
            name = f'SSL {ratio}' + (f' round{round_to}' if round_to else '')
            networks[name] = dense.pruned(plan).eval()
    for num_feat in args.lite_feat:
        torch.manual_seed(args.seed)
        networks[f'BasicVSR-lite {num_feat}'] = SSLBasicVSR(num_feat=num_feat, num_block=30,
                                                            upsample_feat=num_feat).eval()
    return networks


def interleaved_runtimes(callables: dict[str, nn.Module], lqs: torch.Tensor, rounds: int, frames: int):
    times = {name: [] for name in callables}
    with torch.no_grad():
        for module in callables.values():  # warm-up
            module(lqs)
        for _ in range(rounds):
            for name, module in callables.items():
                times[name].append(time_forward_ms(module, lqs) / frames)
    return {name: {'median_ms': statistics.median(t), 'best_ms': min(t), 'runs_ms': t} for name, t in times.items()}


def rsc_share(net: SSLBasicVSR, lqs: torch.Tensor, flows) -> float:
    """Fraction of CPU time spent in RSC's gather (index_select) and scatter (index_add) ops."""
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        net(lqs, flows=flows)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    rsc = sum(e.self_cpu_time_total for e in events if e.key in ('aten::index_select', 'aten::index_add'))
    return rsc / total


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--lr-size', default='180x320')
    parser.add_argument('--frames', type=int, default=3)
    parser.add_argument('--ratios', type=float, nargs='+', default=[0.3, 0.5, 0.7])
    parser.add_argument('--round-to', type=lambda v: None if v == 'none' else int(v), nargs='+',
                        default=[None, 8, 16])
    parser.add_argument('--lite-feat', type=int, nargs='*', default=[32, 40])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--quick', action='store_true', help='a small smoke run (not for the results)')
    parser.add_argument('--out', default=str(RESULTS / 'ssl_efficiency_cpu'))
    args = parser.parse_args(argv)
    if args.quick:
        args.lr_size, args.frames, args.rounds, args.ratios, args.round_to = '32x48', 2, 2, [0.5], [None, 16]
    if args.threads:
        torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.lr_size.split('x'))
    lqs = torch.rand(1, args.frames, 3, h, w, generator=torch.Generator().manual_seed(args.seed))
    started = time.time()
    networks = build_networks(args)
    dense = networks['BasicVSR (dense)']
    with torch.no_grad():
        flows = dense.compute_flows(lqs)  # every network shares SpyNet, so the flows are the same
    rows = {}
    for name, net in networks.items():
        ops = count_ops(net, lqs, exclude=('spynet',))
        params = count_parameters(net, exclude=('spynet',))
        factors = sum(net.factor_sizes().values()) if net.plan is None else 0  # training-time only, not BasicVSR's
        rows[name] = {'params': params.counted - factors, 'spynet_params': params.excluded.get('spynet', 0),
                      'macs_per_frame': ops.counted.macs,
                      'spynet_macs_per_frame': ops.excluded['spynet'].macs if 'spynet' in ops.excluded else 0.0,
                      'plan_kept_fraction': None}
        if net.plan is not None:
            groups = StructuredPruner(PruningConfig()).groups(dense)
            rows[name]['plan_kept_fraction'] = net.plan.kept_fraction(groups)
            rows[name]['rsc_time_share'] = rsc_share(net, lqs, flows)
        print(f'[{time.time() - started:.0f}s] counted {name}: {ops.counted.macs / 1e9:.1f} GMAC/frame', flush=True)
    whole = interleaved_runtimes(networks, lqs, args.rounds, args.frames)
    print(f'[{time.time() - started:.0f}s] timed whole networks', flush=True)
    propagation = interleaved_runtimes({n: WithFlows(net, flows) for n, net in networks.items()}, lqs, args.rounds,
                                       args.frames)
    spynet = interleaved_runtimes({'SpyNet': FlowsOnly(dense)}, lqs, args.rounds, args.frames)['SpyNet']
    print(f'[{time.time() - started:.0f}s] timed propagation + upsampling', flush=True)
    base = rows['BasicVSR (dense)']
    for name, row in rows.items():
        row['runtime_whole'] = whole[name]
        row['runtime_without_spynet'] = propagation[name]
        row['mac_reduction'] = base['macs_per_frame'] / row['macs_per_frame']
        row['speedup_whole'] = whole['BasicVSR (dense)']['median_ms'] / whole[name]['median_ms']
        row['speedup_without_spynet'] = (propagation['BasicVSR (dense)']['median_ms']
                                         / propagation[name]['median_ms'])
        row['ms_per_gmac_without_spynet'] = propagation[name]['median_ms'] / (row['macs_per_frame'] / 1e9)
    report = {'machine': machine_info(), 'command': [sys.executable, *sys.argv], 'lr_size': [h, w],
              'frames': args.frames, 'rounds': args.rounds, 'seed': args.seed, 'spynet_runtime': spynet,
              'wall_seconds': time.time() - started, 'networks': rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix('.json').write_text(json.dumps(report, indent=2))
    out.with_suffix('.md').write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    m = report['machine']
    lines = [f'# SSL efficiency, CPU ({m["cpu"]}, {m["threads"]} threads, torch {m["torch"]})', '',
             f'Command: `{" ".join(report["command"])}`  ',
             f'LR {report["lr_size"][0]}x{report["lr_size"][1]}, {report["frames"]} frames per forward, per-frame '
             f'figures; runtimes are medians of {report["rounds"]} interleaved rounds. SpyNet (unpruned, shared): '
             f'{report["spynet_runtime"]["median_ms"]:.0f} ms/frame. Importance from seeded random weights.', '',
             '| network | params (M, w/o SpyNet) | GMACs/frame | MAC reduction | ms/frame whole | speed-up whole '
             '| ms/frame w/o SpyNet | speed-up w/o SpyNet | speed-up / MAC reduction | ms per GMAC | RSC time share |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for name, r in report['networks'].items():
        share = f'{100 * r["rsc_time_share"]:.1f}%' if 'rsc_time_share' in r else '-'
        lines.append(f'| {name} | {r["params"] / 1e6:.3f} | {r["macs_per_frame"] / 1e9:.1f} | {r["mac_reduction"]:.2f}x '
                     f'| {r["runtime_whole"]["median_ms"]:.0f} | {r["speedup_whole"]:.2f}x '
                     f'| {r["runtime_without_spynet"]["median_ms"]:.0f} | {r["speedup_without_spynet"]:.2f}x '
                     f'| {r["speedup_without_spynet"] / r["mac_reduction"]:.2f} '
                     f'| {r["ms_per_gmac_without_spynet"]:.2f} | {share} |')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
