"""``python -m memsr_plugin.convert``: a trained BasicSR or MMagic network -> its exact plain form (Sec. 3.2),
checked against the original before anything is written (``conversion.plain_files``).

Writes, into ``--output``: ``<name>.pth`` (the plain weights, in the toolbox's checkpoint format), ``<name>.yml``
or ``<name>.py`` (the given options with the plain network in place, ready for ``effsr_core.profile`` / test) and
``<name>.json`` (the architecture and the measured errors). The equivalence check compares outputs on random
images (float64 and float32, borders included); a conversion over the tolerance exits with status 1 and writes
nothing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from effsr_core.command_line import add_network_arguments
from effsr_core.networks import build_model_from_options
from memsr_plugin.conversion.compiler import DEFAULT_OFFSET
from memsr_plugin.conversion.plain_files import convert_checked, write_plain_files

EXAMPLE = ('example:\n'
           '  python -m memsr_plugin.convert -opt options/basicsr/memsr/demo_EDSR_teacher_x4_offline.yml \\\n'
           '      --checkpoint experiments/demo_EDSR_teacher_x4_offline/models/net_g_latest.pth \\\n'
           '      --output experiments/pretrained_models/memsr')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m memsr_plugin.convert', formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLE, description='MemSR exact conversion: write the plain conv/ReLU/PixelShuffle form of a\n'
                                    'skip-connected SR network (EDSR, MSRResNet, EDSRNet) after checking that it\n'
                                    'gives the same output.')
    add_network_arguments(parser)  # the network: -opt/--options, --checkpoint, --param-key
    parser.add_argument('--output', required=True, help='folder for the plain checkpoint, options and summary')
    parser.add_argument('--name', default=None, help="name of the written files and experiment (default: the "
                                                     "options file's name + '_plain')")
    parser.add_argument('--offset', type=float, default=DEFAULT_OFFSET,
                        help='the constant C that carries skipped values through a ReLU (exact while they exceed '
                             '-C; float32 error grows with C)')
    parser.add_argument('--relu-body', action='store_true',
                        help="the paper's form with conv + ReLU in every body layer (carried values +C); default: "
                             "the layers keep their own activations")
    parser.add_argument('--check-size', type=int, nargs=2, default=(32, 32), metavar=('H', 'W'),
                        help='size of the random images of the equivalence check')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random images')
    return parser


def _check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.offset > 0:
        parser.error(f'argument --offset: must be > 0, got {args.offset}')
    if min(args.check_size) < 1:
        parser.error(f'argument --check-size: must be positive, got {args.check_size}')


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_arguments(parser, args)
    try:
        network = build_model_from_options(args.options, args.checkpoint, args.param_key)
        converted = convert_checked(network, args.offset, args.relu_body, tuple(args.check_size), args.seed)
    except (ValueError, FileNotFoundError) as error:  # options, checkpoint or conversion refused
        parser.error(str(error))
    plain = converted.plain
    print(f'{type(network).__name__} -> PlainConvSR: {len(plain.widths)} convs, widths {plain.widths}')
    print(f'equivalence on {converted.images} random {args.check_size[0]}x{args.check_size[1]} images: '
          f'{converted.check.describe()}')
    if not converted.check.exact:
        print('refused: the plain network is not equivalent; nothing written', file=sys.stderr)
        return 1
    write_plain_files(args.options, args.checkpoint, args.output, args.name or f'{Path(args.options).stem}_plain',
                      network, converted, args.offset, args.relu_body, args.seed)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
