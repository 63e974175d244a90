"""``python -m memsr_plugin.convert``: a trained BasicSR or MMagic network -> its exact plain form (Sec. 3.2),
checked against the original before anything is written.

Writes, into ``--output``: ``<name>.pth`` (the plain weights, in the toolbox's checkpoint format), ``<name>.yml``
or ``<name>.py`` (the given options with the plain network in place, ready for ``effsr_core.profile`` / test) and
``<name>.json`` (the architecture and the measured errors). The equivalence check compares outputs on random
images (float64 and float32, borders included); a conversion over the tolerance exits with status 1 and writes
nothing.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import torch

from effsr_core.checkpoints import atomic_write, save_atomic
from effsr_core.networks import build_model_from_options
from memsr_plugin.conversion.compiler import DEFAULT_OFFSET, convert
from memsr_plugin.conversion.equivalence import Equivalence, measure_equivalence
from memsr_plugin.option_files import toolbox_of, write_derived_options

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
    parser.add_argument('-opt', '--options', required=True,
                        help='the network: a BasicSR options YAML (network_g) or an MMagic config .py '
                             '(model.generator)')
    parser.add_argument('--checkpoint', required=True, help='its weights (BasicSR params / MMagic state_dict)')
    parser.add_argument('--param-key', default=None, help='checkpoint entry to read (default: params_ema, params '
                                                          'or state_dict)')
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


def _write(args: argparse.Namespace, network: torch.nn.Module, plain: torch.nn.Module, check: Equivalence) -> Path:
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    name = args.name or f'{Path(args.options).stem}_plain'
    weights = output / f'{name}.pth'
    config = {'type': 'PlainConvSR', **plain.config()}
    if toolbox_of(args.options) == 'basicsr':
        save_atomic({'params': plain.state_dict()}, weights)
    else:
        save_atomic({'state_dict': {f'generator.{k}': v for k, v in plain.state_dict().items()}, 'meta': {}},
                    weights)
    options = write_derived_options(
        args.options, output, name,
        basicsr={'network_g': config, 'path.pretrain_network_g': str(weights), 'path.param_key_g': 'params',
                 'path.strict_load_g': True},
        mmagic={'model.generator': config, 'load_from': str(weights)})
    summary = {'source': {'options': args.options, 'checkpoint': args.checkpoint, 'type': type(network).__name__},
               'plain': config, 'offset': args.offset, 'relu_body': args.relu_body,
               'check': {'size': list(args.check_size), 'seed': args.seed, **vars(check)},
               'parameters': {'source': sum(p.numel() for p in network.parameters()),
                              'plain': sum(p.numel() for p in plain.parameters())}}
    with atomic_write(output / f'{name}.json', 'w') as stream:
        json.dump(summary, stream, indent=2)
    print(f'wrote {weights}, {options} and {output / f"{name}.json"}')
    return options


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_arguments(parser, args)
    form = {'offset': args.offset, 'relu_body': args.relu_body}
    try:
        network = build_model_from_options(args.options, args.checkpoint, args.param_key)
        plain64 = convert(network, dtype=torch.float64, **form)
        plain32 = convert(network, dtype=torch.float32, **form)
    except (ValueError, FileNotFoundError) as error:  # options, checkpoint or conversion refused
        parser.error(str(error))
    generator = torch.Generator().manual_seed(args.seed)
    inputs = torch.rand(2, plain32.in_channels, *args.check_size, generator=generator, dtype=torch.float64)
    check = measure_equivalence(network, plain64, plain32, inputs, args.offset)
    layers = len(plain32.widths)
    print(f'{type(network).__name__} -> PlainConvSR: {layers} convs, widths {plain32.widths}')
    print(f'equivalence on {inputs.shape[0]} random {args.check_size[0]}x{args.check_size[1]} images: '
          f'{check.describe()}')
    if not check.exact:
        print('refused: the plain network is not equivalent; nothing written', file=sys.stderr)
        return 1
    _write(args, network, plain32, check)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
