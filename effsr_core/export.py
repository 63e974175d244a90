"""Command line: export a trained network to ONNX or TorchScript, verified against PyTorch before it is kept.

Usage::

    python -m effsr_core.export -opt OPTIONS --checkpoint CKPT --format onnx|torchscript --output FILE
        [--input-size CxHxW | --lr-size [Cx]HxW --frames T] [--opset N] [--tolerance T] [--seed S]
        [--param-key KEY]

OPTIONS is a BasicSR options YAML (``network_g``) or an MMagic config (``model.generator``); the checkpoint may be
BasicSR's, MMagic's or a bare state dict. The network is exported in its deployed form (``to_plain()`` of a
re-parameterisable network) with dynamic batch, height, width and, for video networks, frame count. The file is
kept only if ONNX Runtime (CPU) or ``torch.jit.load`` reproduces the eager output within the tolerance at the
given size and at a second size; else the command exits with status 1 and leaves no file. Mistakes in the
arguments stop it with one line naming the option (status 2) before anything is built.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from typing import Sequence

import torch

from effsr_core import compat
from effsr_core.command_line import (add_network_arguments, build_network, check_output_file, is_video_network,
                                     parse_frame_size, parse_image_size, parse_positive, parse_tolerance, say)
from effsr_core.exporting import (DEFAULT_OPSET, DEFAULT_TOLERANCE, FORMATS, MAX_OPSET, MIN_OPSET, ExportError,
                                  ExportReport, export_and_verify)

EXAMPLE = ('example:\n'
           '  python -m effsr_core.export -opt options/basicsr/ssl/demo_SSL_BasicVSR_tiny_offline.yml \\\n'
           '      --checkpoint experiments/demo_SSL_BasicVSR_tiny_offline/models/net_g_latest.pth \\\n'
           '      --format onnx --output results/export/ssl_basicvsr_tiny.onnx --lr-size 64x64 --frames 5')
DEFAULT_IMAGE_SIZE = (3, 64, 64)
DEFAULT_FRAME_SIZE = (3, 64, 64)
DEFAULT_FRAMES = 3


def parse_opset(text: str) -> int:
    """Parse an ONNX opset in [MIN_OPSET, MAX_OPSET]."""
    if not text.isdigit() or not MIN_OPSET <= int(text) <= MAX_OPSET:
        raise argparse.ArgumentTypeError(f'expected an opset from {MIN_OPSET} (GridSample) to {MAX_OPSET} (the '
                                         f'newest torch writes), got {text!r}')
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the export CLI."""
    parser = argparse.ArgumentParser(prog='python -m effsr_core.export', description=__doc__.split('\n')[0],
                                     epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_network_arguments(parser)

    target = parser.add_argument_group('file')
    target.add_argument('--format', required=True, choices=FORMATS,
                        help='onnx (verified with ONNX Runtime, CPU) or torchscript (verified with torch.jit.load)')
    target.add_argument('--output', required=True, metavar='FILE',
                        help='file to write (its folder must exist); written only once verified')
    target.add_argument('--opset', type=parse_opset, metavar='N',
                        help=f'ONNX opset, {MIN_OPSET} to {MAX_OPSET} (default {DEFAULT_OPSET}; onnx only)')

    sizes = parser.add_argument_group('example input (every size stays dynamic in the file)')
    sizes.add_argument('--input-size', type=parse_image_size, metavar='CxHxW',
                       help=f'image-model input (default {"x".join(map(str, DEFAULT_IMAGE_SIZE))})')
    sizes.add_argument('--lr-size', type=parse_frame_size, metavar='[Cx]HxW',
                       help=f'video-model frame size (default {"x".join(map(str, DEFAULT_FRAME_SIZE[1:]))})')
    sizes.add_argument('--frames', type=parse_positive, metavar='T',
                       help=f'video-model frames (default {DEFAULT_FRAMES})')

    checks = parser.add_argument_group('verification')
    checks.add_argument('--tolerance', type=parse_tolerance, default=DEFAULT_TOLERANCE, metavar='T',
                        help=f'largest max|file - eager| / max|eager| accepted (default {DEFAULT_TOLERANCE:g})')
    checks.add_argument('--seed', type=int, default=0, metavar='S',
                        help='seed of the random verification inputs (default 0; the second input uses S+1)')
    return parser


def _input_shape(parser: argparse.ArgumentParser, args: argparse.Namespace, video: bool) -> tuple[int, ...]:
    """(1, c, h, w) or (1, t, c, h, w) from the size options; options of the other kind of model are refused."""
    if video:
        if args.input_size is not None:
            parser.error(f'argument --input-size: {args.options} describes a video model: give --lr-size and '
                         f'--frames')
        frames = DEFAULT_FRAMES if args.frames is None else args.frames
        return (1, frames, *(args.lr_size or DEFAULT_FRAME_SIZE))
    for option, value in (('--lr-size', args.lr_size), ('--frames', args.frames)):
        if value is not None:
            parser.error(f'argument {option}: only for video models, and {args.options} describes an image model '
                         f'(give --input-size)')
    return (1, *(args.input_size or DEFAULT_IMAGE_SIZE))


def _check_files(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse a missing checkpoint, an output that is a folder or whose folder is missing, and ONNX without
    ONNX Runtime."""
    if not Path(args.checkpoint).is_file():
        parser.error(f'argument --checkpoint: file not found: {args.checkpoint}')
    if args.output.endswith(('/', os.sep)):  # the one refusal that can suggest a name
        parser.error(f'argument --output: {args.output} names a folder (it ends with a slash); give a file name, '
                     f'e.g. {args.output}{Path(args.options).stem}.{"onnx" if args.format == "onnx" else "pt"}')
    check_output_file(parser, '--output', args.output)
    if args.format == 'onnx' and importlib.util.find_spec('onnxruntime') is None:
        parser.error('argument --format: onnx is verified with ONNX Runtime, which is not installed '
                     '(bash scripts/setup_env.sh installs the pinned onnxruntime)')
    if args.format != 'onnx' and args.opset is not None:
        parser.error('argument --opset: only for --format onnx')


def _build(parser: argparse.ArgumentParser, args: argparse.Namespace) -> torch.nn.Module:
    """The network with its checkpoint, in its deployed form when it has one; errors name the option."""
    model, deployed = build_network(parser, args.options, args.checkpoint, args.param_key)
    if deployed:
        say(f'exporting the deployed form ({type(model).__name__}, from to_plain())')
    return model


def _shape(shape: Sequence[int]) -> str:
    return 'x'.join(map(str, shape))


def _print_report(name: str, report: ExportReport) -> None:
    opset = f' opset {report.opset}' if report.opset is not None else ''
    print(f'exported {name} ({report.method}) to {report.format}{opset}: {report.path} '
          f'({report.size_bytes / 2 ** 20:.2f} MiB) in {report.export_seconds:.1f} s')
    print(f'verified with {report.runtime} against PyTorch eager in {report.verify_seconds:.1f} s, '
          f'error = max|file - eager| / max|eager|, tolerance {report.tolerance:g}:')
    for comparison in report.comparisons:
        print(f'  {_shape(comparison.input_shape):>16} -> {_shape(comparison.output_shape):<16} '
              f'error {comparison.relative_error:.2e} (max |difference| {comparison.max_abs_error:.2e}, '
              f'max |output| {comparison.max_abs_output:.3g})')


def main(argv: Sequence[str] | None = None) -> int:
    """Export, verify, then move the file into place.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        0 once the file is verified and in place; 1 when the export or its verification fails (nothing is left
        at --output). Argument errors exit with status 2 and a message naming the option.
    """
    compat.install()
    parser = build_parser()
    args = parser.parse_args(argv)
    video = is_video_network(parser, args.options)
    shape = _input_shape(parser, args, video)
    _check_files(parser, args)
    network = _build(parser, args)
    name = type(network).__name__
    opset = DEFAULT_OPSET if args.opset is None else args.opset
    say(f'exporting {name} to {args.format} at {_shape(shape)}, then verifying at that size and a second one')
    try:
        report = export_and_verify(network, shape, args.format, args.output, opset=opset, tolerance=args.tolerance,
                                   seed=args.seed)
    except ExportError as error:
        print(f'export failed: {error}; nothing was written to {args.output}', file=sys.stderr)
        return 1
    _print_report(name, report)
    return 0


if __name__ == '__main__':
    sys.exit(main())
