"""Command line: super-resolve a folder of images, or of video frames, or a video file, with a trained network.

Usage::

    python -m effsr_core.infer -opt OPTIONS --checkpoint CKPT --input DIR|VIDEO --output DIR
        [--tile N [--tile-overlap P] [--tile-blend B]] [--clip-length T [--clip-overlap C]]
        [--device cpu|cuda] [--param-key KEY]

OPTIONS is a BasicSR options YAML (``network_g``) or an MMagic config (``model.generator``); the checkpoint may be
BasicSR's, MMagic's or a bare state dict. Image models super-resolve every image in --input into a PNG of the same
stem in --output. Video models (BasicSR video ``model_type``, MMagic VSR models) read --input as one sequence of
frames, or as a folder of clip folders (REDS: ``000/00000000.png``), and write the same layout; or as a video file
(.mp4, .avi, .mkv, .mov, .webm, decoded by OpenCV), one sequence written as ``00000000.png``, ... Every mistake
that can be found before the network runs stops the run with one line naming the option, before anything is
written; each PNG is written whole or not at all. Progress goes to stderr, one line per image or sequence.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import torch

from effsr_core import compat
from effsr_core.command_line import (add_network_arguments, build_network, is_video_network, parse_non_negative,
                                     parse_positive, say)
from effsr_core.inference import (DEFAULT_CLIP_OVERLAP, DEFAULT_TILE_OVERLAP, InferenceError, InferenceItem,
                                  InferenceSettings, check_tile_fits, plan_images, plan_video, run_inference)
from effsr_core.video_files import VIDEO_SUFFIXES

EXAMPLE = ('example:\n'
           '  python -m effsr_core.infer -opt options/basicsr/ssl/demo_SSL_BasicVSR_tiny_offline.yml \\\n'
           '      --checkpoint experiments/demo_SSL_BasicVSR_tiny_offline/models/net_g_latest.pth \\\n'
           '      --input data/offline/video_sr/train_sharp_bicubic/X4/000 --output results/infer/000\n'
           '  (a video model also takes a video file: --input clip.mp4 --output results/infer/clip)')
#: InferenceError.setting -> the option it comes from
OPTION_OF_SETTING = {'input': '--input', 'output': '--output', 'tile': '--tile', 'tile_overlap': '--tile-overlap',
                     'tile_blend': '--tile-blend', 'clip_length': '--clip-length', 'clip_overlap': '--clip-overlap',
                     'model': '-opt/--options'}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the inference CLI."""
    parser = argparse.ArgumentParser(prog='python -m effsr_core.infer', description=__doc__.split('\n')[0],
                                     epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    model = add_network_arguments(parser)
    model.add_argument('--device', choices=('cpu', 'cuda'), default='cpu',
                       help='device the network runs on (default cpu; cuda must be available)')

    files = parser.add_argument_group('files')
    files.add_argument('--input', required=True, metavar='DIR|VIDEO',
                       help=f'a folder of images (image model); of frames, or of clip folders of frames, or a video '
                            f'file ({", ".join(VIDEO_SUFFIXES)}) (video model)')
    files.add_argument('--output', required=True, metavar='DIR',
                       help='PNGs with the input stems (a video file: 00000000.png, ...), in the input layout '
                            '(created if missing)')

    tiling = parser.add_argument_group('tiling (large frames, bounded memory)')
    tiling.add_argument('--tile', type=parse_non_negative, default=0, metavar='N',
                        help='tile size in LR pixels (default 0: whole frames); video: every frame of a clip')
    tiling.add_argument('--tile-overlap', type=parse_non_negative, default=DEFAULT_TILE_OVERLAP, metavar='P',
                        help=f'LR pixels neighbouring tiles share, at least (default {DEFAULT_TILE_OVERLAP}, '
                             f'below --tile)')
    tiling.add_argument('--tile-blend', type=parse_non_negative, metavar='B',
                        help='LR pixels over which one tile fades into the next, mid-overlap (default P/2); '
                             'outputs equal untiled ones for a receptive field within (P-B)/2 pixels')

    clips = parser.add_argument_group('video models')
    clips.add_argument('--clip-length', type=parse_positive, metavar='T',
                       help='frames per forward (default: the whole sequence)')
    clips.add_argument('--clip-overlap', type=parse_non_negative, metavar='C',
                       help=f'frames of context on each side of the frames a clip keeps, their outputs dropped '
                            f'(default {DEFAULT_CLIP_OVERLAP})')
    return parser


def _refuse(parser: argparse.ArgumentParser, error: InferenceError) -> None:
    parser.error(f'argument {OPTION_OF_SETTING[error.setting]}: {error}')


def _settings(parser: argparse.ArgumentParser, args: argparse.Namespace, video: bool) -> InferenceSettings:
    """The settings from the arguments, checked; clip options are refused for an image model."""
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('argument --device: CUDA is not available')
    if not video:
        for option, value in (('--clip-length', args.clip_length), ('--clip-overlap', args.clip_overlap)):
            if value is not None:
                parser.error(f'argument {option}: only for video models, and {args.options} describes an image '
                             f'model')
    clip_overlap = DEFAULT_CLIP_OVERLAP if args.clip_overlap is None else args.clip_overlap
    settings = InferenceSettings(tile=args.tile, tile_overlap=args.tile_overlap, tile_blend=args.tile_blend,
                                 clip_length=args.clip_length, clip_overlap=clip_overlap, device=args.device)
    try:
        settings.check()
    except InferenceError as error:
        _refuse(parser, error)
    return settings


def _build(parser: argparse.ArgumentParser, args: argparse.Namespace) -> torch.nn.Module:
    """The network with its checkpoint, in its deployed form when it has one; errors name the option."""
    model, deployed = build_network(parser, args.options, args.checkpoint, args.param_key)
    if deployed:
        say(f'running the deployed form ({type(model).__name__}, from to_plain())')
    return model


def _count(number: int, noun: str) -> str:
    return f'{number} {noun}{"s" * (number != 1)}'


def _report(position: int, total: int, item: InferenceItem, forwards: int, seconds: float) -> None:
    frames = f': {_count(len(item.outputs), "frame")}, {_count(forwards, "forward")}' if len(item.outputs) > 1 else ''
    say(f'[{position}/{total}] {item.name}{frames}, {seconds:.2f} s')


def _report_window(item: InferenceItem, done: int, windows: int) -> None:
    say(f'  {item.name}: clip {done}/{windows}')


def main(argv: Sequence[str] | None = None) -> int:
    """Super-resolve the input folder into the output folder.

    Arguments, input and output layout, options and checkpoint are all checked before anything is written.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        Exit status 0; argument errors exit with status 2 and a message naming the option.
    """
    compat.install()
    parser = build_parser()
    args = parser.parse_args(argv)
    video = is_video_network(parser, args.options)
    settings = _settings(parser, args, video)
    try:
        items = (plan_video if video else plan_images)(args.input, args.output)
    except InferenceError as error:
        _refuse(parser, error)
    model = _build(parser, args)
    try:
        check_tile_fits(model, settings, video)
    except InferenceError as error:
        _refuse(parser, error)
    Path(args.output).mkdir(parents=True, exist_ok=True)
    kind = 'sequence' if video else 'image'
    say(f'{_count(len(items), kind)} from {args.input} on {args.device}')
    try:
        summary = run_inference(model, items, video, settings, _report, _report_window)
    except InferenceError as error:
        _refuse(parser, error)
    frames = f', {_count(summary.frames, "frame")}, {_count(summary.forwards, "forward")}' if video else ''
    print(f'super-resolved {_count(summary.items, kind)}{frames} in {summary.seconds:.1f} s -> {args.output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
