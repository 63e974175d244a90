"""What SSL keeps in a full-size BasicVSR, as the paper's Fig. 5: the pruning ratio of every conv layer per branch.

The network of ``ssl_efficiency.py`` (64 feat, 30 blocks, seeded random weights: no pretrained BasicVSR can be
downloaded here, so the spread over the layers is that of random weights, not of a trained network's) pruned by SSL
Min-Global at ratio 0.5; its compact checkpoint goes through ``python -m ssl_plugin.show_plan`` (the command a user
runs on their own checkpoint), which writes the summary and the PNG.

    python benchmarks/ssl_plan_picture.py [--ratio 0.5] [--selection min_global] [--round-to 16]
        # writes benchmarks/results/ssl_plan_<selection>_<ratio>[_round16].{json,png}
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from ssl_plugin import show_plan
from ssl_plugin.archs import SSLBasicVSR
from ssl_plugin.pruning.config import PruningConfig
from ssl_plugin.pruning.pruner import StructuredPruner

RESULTS = Path(__file__).parent / 'results'


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--ratio', type=float, default=0.5, help='pruning ratio (default 0.5)')
    parser.add_argument('--selection', default='min_global', help='SSL selection (default min_global)')
    parser.add_argument('--round-to', type=int, help='round kept counts to a multiple (default: none)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random weights (default 0)')
    args = parser.parse_args(argv)
    config = PruningConfig(ratio=args.ratio, selection=args.selection, round_to=args.round_to)
    torch.manual_seed(args.seed)
    dense = SSLBasicVSR(num_feat=64, num_block=30)
    compact = dense.pruned(StructuredPruner(config).select(dense))
    name = f'ssl_plan_{args.selection}_{args.ratio:g}' + (f'_round{args.round_to}' if args.round_to else '')
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / 'net_g_compact.pth'
        torch.save({'params': compact.state_dict()}, checkpoint)
        show_plan.main([str(checkpoint), '--png', str(RESULTS / f'{name}.png'),
                        '--json', str(RESULTS / f'{name}.json')])


if __name__ == '__main__':
    main()
