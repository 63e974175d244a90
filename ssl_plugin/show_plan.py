"""Command line: what a pruned network kept. Reads the pruning plan of an SSL-family checkpoint and reports it.

Any checkpoint of a compact ``SSLBasicVSR`` (BasicSR ``params`` / ``params_ema`` or MMagic ``state_dict``; method
SSL, L1-norm or ASSL; made for a ratio or a latency target) carries its plan in the state dict (``_extra_state``).
This prints the units kept per group (per branch, one line per unit kind listing the kept count of every residual
block; the upsampler), the kept fraction, the MACs per frame of the compact and the dense network (SpyNet counted
apart) and the plan's latency record; ``--predict-latency`` also predicts both networks' latency here with the
device cost model (eager NCHW on the CPU; measuring a new table takes minutes). ``--png`` draws the pruning ratio of
each conv layer like the SSL paper's Fig. 5 (forward / backward / upsampling networks), ``--json`` writes the
summary. Nothing is written without them; bad arguments exit with status 2 before anything is measured.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import torch

from effsr_core.checkpoints import CheckpointError, atomic_write, read_generator_state
from effsr_core.command_line import check_output_file, parse_frame_size, say
from effsr_core.cost_model import CostModelError, CostTable, default_table_path, get_backend, predict_latency
from effsr_core.profiling.counting import count_ops
from ssl_plugin.archs.checkpoint_mapping import EXTRA_STATE, is_foreign
from ssl_plugin.archs.ssl_basicvsr_arch import SSLBasicVSR
from ssl_plugin.pruning.latency import other_device
from ssl_plugin.pruning.plan import PlanError, PruningPlan, decode_state
from ssl_plugin.pruning.plan_picture import draw_plan
from ssl_plugin.pruning.summary import METHOD_NAMES, describe_plan, summarize_plan

PROG = 'python -m ssl_plugin.show_plan'
FRAMES = 2  # frames of the clip the MACs and latencies are counted on (reported per frame)
LATENCY_BACKEND = 'eager-nchw'
UNIT_WORDS = {'upconv1': 'pixel-shuffle groups', 'upconv2': 'pixel-shuffle groups', 'conv_hr': 'filters'}
EXAMPLE = ('example:\n'
           f'  {PROG} experiments/train_SSL-bi_BasicVSR_REDS_BIx4/models/net_g_latest.pth \\\n'
           '      --png kept.png --json kept.json --lr-size 180x320\n'
           f'  {PROG} work_dirs/ssl-basicvsr-bi_reds-bix4/iter_308375.pth --predict-latency')


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the command."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split('\n')[0], epilog=EXAMPLE,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('checkpoint', metavar='CKPT',
                        help='a checkpoint of a pruned SSLBasicVSR (BasicSR or MMagic; SSL, L1-norm or ASSL)')
    parser.add_argument('--param-key', metavar='KEY',
                        help='checkpoint entry to read (default: params_ema, params or state_dict)')
    parser.add_argument('--png', metavar='OUT.png',
                        help='draw the pruning ratio of each conv layer per branch here (its folder must exist)')
    parser.add_argument('--json', metavar='OUT.json', help='write the summary as JSON here (its folder must exist)')
    parser.add_argument('--lr-size', type=parse_frame_size, default=(3, 180, 320), metavar='[3x]HxW',
                        help='LR frame size the MACs (and latencies) are counted at (default 180x320)')
    parser.add_argument('--predict-latency', action='store_true',
                        help=f'also predict the dense and the pruned latency per frame with the device cost model '
                             f'({LATENCY_BACKEND}; the table is measured on first use and cached, docs/cost_model.md)')
    parser.add_argument('--cost-table', metavar='PATH',
                        help='the cost table file of --predict-latency (default: ~/.cache/effsr/cost_tables/...)')
    return parser


def _check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse inconsistent arguments and outputs that cannot be written, naming the option."""
    if args.cost_table is not None and not args.predict_latency:
        parser.error('argument --cost-table: needs --predict-latency')
    if args.lr_size[0] != 3:
        parser.error(f'argument --lr-size: SSLBasicVSR takes RGB frames (3 channels), got {args.lr_size[0]}')
    check_output_file(parser, '--png', args.png, '.png')
    check_output_file(parser, '--json', args.json)


def _extra_state(state: dict[str, Any]) -> dict | None:
    """The decoded ``_extra_state`` of the network (the outermost one holding a ``plan`` entry), or None."""
    keys = sorted((key for key in state if key == EXTRA_STATE or key.endswith('.' + EXTRA_STATE)), key=len)
    for key in keys:
        try:
            extra = decode_state(state[key])
        except (ValueError, TypeError, AttributeError):  # not a JSON byte tensor
            continue
        if isinstance(extra, dict) and 'plan' in extra:
            return extra
    return None


def _pending_words(pending: dict | None) -> str:
    """What the pending selection of a dense network would prune, in words."""
    if pending is None:
        return 'and no selection is pending (pruning has not started)'
    try:
        plan = PruningPlan.coerce(pending)
        sizes = SSLBasicVSR(**plan.arch).prunable_groups()
        pruned = sum(len(plan.pruned_indices(name, sizes[name])) for name in plan.kept)
    except (PlanError, TypeError, KeyError) as error:
        return f'and a pending selection that does not fit the architecture ({error})'
    ratio = '' if plan.ratio is None else f', ratio {plan.ratio:g}'
    return (f'with a pending selection ({METHOD_NAMES.get(plan.method, plan.method)}{ratio}) that would prune '
            f'{pruned} of {sum(sizes.values())} units at the prune iteration')


def read_plan(parser: argparse.ArgumentParser, path: str,
              param_key: str | None) -> tuple[PruningPlan, SSLBasicVSR, SSLBasicVSR]:
    """The plan of the compact network stored in ``path``, the dense network of its architecture and the compact
    one (random weights: the structure is what is reported); every refusal exits through ``parser.error`` naming
    CKPT."""
    try:
        state = read_generator_state(path, param_key)
    except (CheckpointError, FileNotFoundError, IsADirectoryError) as error:
        parser.error(f'argument CKPT: {error}')
    extra = _extra_state(state)
    if extra is None:
        what = 'a BasicSR / MMagic BasicVSR (dense, nothing pruned)' if is_foreign(state) else 'no SSL pruning plan'
        parser.error(f'argument CKPT: {path} holds {what}: it has no {EXTRA_STATE!r} entry, so it is not an '
                     f'SSL-family network (SSLBasicVSR, pruned by SSL, L1-norm or ASSL)')
    if extra['plan'] is None:
        parser.error(f'argument CKPT: {path} is not pruned yet: it only holds a dense SSLBasicVSR, '
                     f'{_pending_words(extra.get("pending_plan"))}; give a checkpoint saved after pruning')
    try:
        plan = PruningPlan.coerce(extra['plan'])
        return plan, SSLBasicVSR(**plan.arch), SSLBasicVSR(**plan.arch, plan=plan)
    except (PlanError, TypeError, KeyError) as error:
        parser.error(f'argument CKPT: {path} holds a pruning plan that does not fit SSLBasicVSR: {error}')


def _cost_table(args: argparse.Namespace) -> CostTable:
    backend = get_backend(LATENCY_BACKEND)
    return CostTable.open(backend, args.cost_table or default_table_path(backend))


def _macs(network: torch.nn.Module, shape: tuple[int, ...]) -> tuple[float, float]:
    """MACs per frame outside and inside SpyNet."""
    report = count_ops(network, torch.rand(shape, generator=torch.Generator().manual_seed(0)), exclude=('spynet',))
    return report.counted.macs, report.excluded['spynet'].macs if 'spynet' in report.excluded else 0.0


def _gmacs(macs: float) -> str:
    return f'{macs / 1e9:.3g} G'


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as the text block the command prints."""
    arch = summary['arch']
    kind = 'BasicVSR' if arch.get('bidirectional', True) else 'BasicVSR-uni'
    lines = [f'checkpoint: {summary["checkpoint"]}' if summary.get('checkpoint') else None,
             f'network: SSLBasicVSR ({kind}), ' + ', '.join(f'{k} {v}' for k, v in arch.items()),
             f'plan: {describe_plan(summary)}; group score {summary.get("group_score") or "-"}; '
             f'units {", ".join(summary["units"])}',
             f'kept {summary["kept_units"]} of {summary["total_units"]} prunable units '
             f'({summary["kept_fraction"]:.1%}; pruned {1 - summary["kept_fraction"]:.1%})']
    groups = summary['groups']
    lines = [line for line in lines if line is not None]
    for branch in ('forward', 'backward'):
        if branch not in summary['branches']:
            continue
        hidden = groups[f'{branch}.hidden']
        blocks = len(summary['branches'][branch]['mid'])
        lines.append(f'{branch} network: hidden state {hidden["kept"]}/{hidden["size"]} channels; kept per residual '
                     f'block 0..{blocks - 1} (of {hidden["size"]}):')
        width = len(str(hidden['size'])) + 1
        for unit in ('in', 'mid', 'out'):
            counts = ''.join(f'{groups[f"{branch}.{j}.{unit}"]["kept"]:>{width}}' for j in range(blocks))
            lines.append(f'  {unit:<4}{counts}')
    lines.append('upsampling network: ' + ', '.join(
        f'{name} {groups[name]["kept"]}/{groups[name]["size"]} {UNIT_WORDS.get(name, "units")}'
        for name in summary['upsampler']))
    macs = summary.get('macs')
    if macs:
        lines.append(f'MACs per frame at LR {macs["lr_size"][0]}x{macs["lr_size"][1]} ({macs["frames"]}-frame clip, '
                     f'SpyNet apart): pruned {_gmacs(macs["pruned"])}, dense {_gmacs(macs["dense"])} '
                     f'({macs["reduction"]:.2f}x fewer, -{1 - macs["pruned"] / macs["dense"]:.1%}); '
                     f'SpyNet {_gmacs(macs["spynet"])}')
    latency = summary.get('latency')
    if latency:
        lines.append(f'latency target of the plan: {latency.get("target")}: predicted {latency.get("predicted_ms")} '
                     f'ms per frame against dense {latency.get("dense_ms")} ms '
                     f'({latency.get("predicted_speedup")}x), ratio found {latency.get("ratio")}')
        if summary.get('latency_device'):
            lines.append(f'  predicted on another device or version than this one: {summary["latency_device"]}')
    predicted = summary.get('predicted')
    if predicted:
        lines.append(f'predicted here ({predicted["backend"]}, {predicted["frames"]} frames of '
                     f'{predicted["lr_size"][0]}x{predicted["lr_size"][1]}, SpyNet included): pruned '
                     f'{predicted["pruned_ms"]:.4g} ms, dense {predicted["dense_ms"]:.4g} ms per frame '
                     f'({predicted["speedup"]:.2f}x)')
    return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print what the checkpoint's pruned network kept; write the PNG / JSON when asked.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        Exit status 0; bad arguments exit with status 2 and one line naming the argument, before any work.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_arguments(parser, args)
    plan, dense, compact = read_plan(parser, args.checkpoint, args.param_key)
    table = None
    if args.predict_latency:
        try:
            table = _cost_table(args)
        except CostModelError as error:
            parser.error(f'argument --cost-table: {error}')
    summary = {'checkpoint': str(args.checkpoint), **summarize_plan(plan, dense)}
    summary['latency_device'] = other_device(summary['latency'])
    shape = (1, FRAMES, *args.lr_size)
    say(f'counting MACs at LR {shape[-2]}x{shape[-1]}')
    (dense_macs, spynet_macs), (pruned_macs, _) = _macs(dense, shape), _macs(compact, shape)
    summary['macs'] = {'lr_size': list(shape[-2:]), 'frames': FRAMES, 'pruned': pruned_macs, 'dense': dense_macs,
                       'reduction': round(dense_macs / pruned_macs, 4), 'spynet': spynet_macs}
    if table is not None:
        say(f'predicting the latency ({table.backend.name}, table {table.path}; missing entries are measured now)')
        dense_ms = predict_latency(dense, shape, table).per_frame_ms
        pruned = predict_latency(compact, shape, table)
        summary['predicted'] = {'backend': table.backend.name, 'table': str(table.path), 'lr_size': list(shape[-2:]),
                                'frames': FRAMES, 'dense_ms': dense_ms, 'pruned_ms': pruned.per_frame_ms,
                                'speedup': round(dense_ms / pruned.per_frame_ms, 4),
                                'unpriced': list(pruned.unreplayable)}
    print(format_summary(summary))
    if args.png:
        draw_plan(summary, args.png)
        print(f'Wrote {args.png}')
    if args.json:
        with atomic_write(args.json, 'w', encoding='utf-8') as f:
            json.dump(summary, f, indent=1)
            f.write('\n')
        print(f'Wrote {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
