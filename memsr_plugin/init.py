"""``python -m memsr_plugin.init``: MemSR's winning initialisation (``winning_init``, Alg. 1 with the dynamic width
of Sec. 3.5) of a plain student from a BasicSR or MMagic teacher checkpoint.

Writes, into ``--output``: ``student_init.pth`` (the student's weights, its architecture and the distillation
adapters, ``winning_init.checkpoint_content``) and ``student_init.json`` (widths, errors, settings); with
``--distill-options`` also the distillation options of that student, filled in from a template.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Sequence

import torch

from effsr_core.checkpoints import atomic_write, save_atomic
from effsr_core.command_line import add_network_arguments
from effsr_core.networks import build_model_from_options
from memsr_plugin.conversion.compiler import DEFAULT_OFFSET, convert
from memsr_plugin.option_files import generator_options, toolbox_of, write_derived_options
from memsr_plugin.options import INITIALISATION
from memsr_plugin.winning_init import InitSettings, WinningInitialisation, checkpoint_content, winning_initialisation

OUTPUT_NAME = 'student_init.pth'
SUMMARY_NAME = 'student_init.json'
EXAMPLE = ('example:\n'
           '  python -m memsr_plugin.init -opt options/teacher_edsr_x4.yml --checkpoint edsr_x4.pth --theta 0.05 \\\n'
           '      --output experiments/plain_x4_init')


def format_table(result: WinningInitialisation, teacher_widths: Sequence[int]) -> str:
    """Per distilled layer: teacher channels, student width, Eq. 15 error; then the upsampler and output error."""
    lines = [f'{"layer":>5}  {"teacher":>7}  {"width":>5}  {"error":>9}']
    for layer, width, error in zip(result.layers, result.widths, result.errors):
        lines.append(f'{layer:>5}  {teacher_widths[layer]:>7}  {width:>5}  {error:>9.3e}')
    body = len(result.layers)
    lines.append(f'upsampler: teacher layers {body}-{len(teacher_widths) - 1} copied, layer {body} composed with the '
                 f'last adapter')
    lines.append(f'student output vs teacher (relative, on the samples): {result.output_error:.3e}')
    return '\n'.join(lines)


def _setting(parser: argparse._ActionsContainer, name: str, **kwargs) -> None:
    """The flag ``--<name>`` of a declared setting (``options.INITIALISATION``): its help and default."""
    option = INITIALISATION[name]
    parser.add_argument(f'--{name}', help=option.help, **({} if option.default is None else
                                                           {'default': option.default}), **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m memsr_plugin.init', formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLE,
        description='MemSR winning initialisation (Alg. 1): convert a teacher to its plain form and derive a\n'
                    'plain student, its per-layer widths and the distillation adapters.')
    add_network_arguments(parser)  # the teacher: -opt/--options, --checkpoint, --param-key
    width = parser.add_mutually_exclusive_group(required=True)
    _setting(width, 'theta', type=float)
    _setting(width, 'widths', type=int, nargs='+')
    parser.add_argument('--output', required=True, help=f'folder for {OUTPUT_NAME} and {SUMMARY_NAME}')
    _setting(parser, 'samples', type=int)
    _setting(parser, 'patch', type=int)
    _setting(parser, 'seed', type=int)
    _setting(parser, 'beta', type=float)
    _setting(parser, 'device_backend', type=str)
    _setting(parser, 'device_lr_size', type=int, nargs=2, metavar=('H', 'W'))
    _setting(parser, 'device_step', type=int)
    _setting(parser, 'device_table', type=str)
    parser.add_argument('--teacher-form', choices=('relu-body', 'own-activations'), default='relu-body',
                        help="relu-body: the paper's plain teacher, conv+ReLU in every body layer (carried values "
                             "+C); own-activations: block outputs keep no activation")
    parser.add_argument('--offset', type=float, default=DEFAULT_OFFSET,
                        help='the constant C that carries values through a ReLU (exact while they exceed -C)')
    parser.add_argument('--distill-options', default=None, metavar='TEMPLATE',
                        help='also write distillation options for this student: TEMPLATE (a MemSRDistillModel YAML '
                             'or MemSRDistillEditor config of the same toolbox as -opt) with the student, teacher, '
                             'their weights and the initialisation file filled in, as OUTPUT/NAME.yml|.py')
    parser.add_argument('--name', default=None, help="experiment name of those options (default: the template's "
                                                     "file name)")
    return parser


def _check_template(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The distillation template must be readable and of the teacher's toolbox (checked before any work)."""
    if args.name is not None and args.distill_options is None:
        parser.error('argument --name: only used with --distill-options')
    if args.distill_options is None:
        return
    try:
        template, teacher = toolbox_of(args.distill_options), toolbox_of(args.options)
    except (ValueError, FileNotFoundError) as error:
        parser.error(f'argument --distill-options: {error}')
    if template != teacher:
        parser.error(f'argument --distill-options: a {template} template for a {teacher} teacher (-opt); use one '
                     f'of the same toolbox')


def write_distill_options(args: argparse.Namespace, student: dict, init_file: Path) -> Path:
    """The template with this student, the teacher of ``-opt`` and their files filled in."""
    student = {'type': 'PlainConvSR', **student}
    teacher = generator_options(args.options)
    name = args.name or Path(args.distill_options).stem
    return write_derived_options(
        args.distill_options, args.output, name,
        basicsr={'network_g': student, 'network_t': teacher, 'path.pretrain_network_g': str(init_file),
                 'path.pretrain_network_t': args.checkpoint, 'distill.init_file': str(init_file)},
        mmagic={'model.generator': student, 'model.teacher': teacher, 'model.teacher_checkpoint': args.checkpoint,
                'model.distill.init_file': str(init_file)})


def main(argv: Sequence[str] | None = None) -> WinningInitialisation:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_template(parser, args)
    teacher_form = {'relu_body': args.teacher_form == 'relu-body', 'offset': args.offset}
    try:
        settings = InitSettings.check(**{name: getattr(args, name) for name in INITIALISATION.names})
        network = build_model_from_options(args.options, args.checkpoint, args.param_key)
        teacher = convert(network, dtype=torch.float64, **teacher_form)
        result = winning_initialisation(teacher, settings)
    except (ValueError, FileNotFoundError) as error:  # settings, options, checkpoint or conversion refused
        parser.error(str(error))
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    save_atomic(checkpoint_content(result, teacher_form), output / OUTPUT_NAME)
    summary = {'widths': result.widths, 'errors': result.errors, 'layers': result.layers,
               'teacher_channels': teacher.widths[:len(result.layers)], 'output_error': result.output_error,
               'student': result.student.config(), 'teacher_form': teacher_form,
               'settings': {**dataclasses.asdict(settings), 'options': args.options, 'checkpoint': args.checkpoint}}
    with atomic_write(output / SUMMARY_NAME, 'w') as stream:
        json.dump(summary, stream, indent=2)
    print(format_table(result, teacher.widths))
    print(f'wrote {output / OUTPUT_NAME} and {output / SUMMARY_NAME}')
    if args.distill_options is not None:
        print(f'wrote {write_distill_options(args, result.student.config(), output / OUTPUT_NAME)}')
    return result


if __name__ == '__main__':
    main(sys.argv[1:])
