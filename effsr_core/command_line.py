"""Pieces shared by the command lines that build a network from options and a checkpoint (``effsr_core.profile``,
``effsr_core.infer``, ``effsr_core.export``, ``memsr_plugin.convert`` / ``init``): the argument types, the network
arguments and the network they name, progress lines."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from torch import nn

from effsr_core.networks import (ModelBuildError, build_model_from_options, deployed_form, is_video_options,
                                 load_checkpoint)

DEFAULT_CHANNELS = 3  # of a frame size given as HxW


def _parse_dims(text: str, allowed_counts: tuple[int, ...], example: str) -> list[int]:
    parts = text.lower().split('x')
    if len(parts) not in allowed_counts or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise argparse.ArgumentTypeError(f'malformed size {text!r}; expected e.g. {example}')
    return [int(part) for part in parts]


def parse_image_size(text: str) -> tuple[int, int, int]:
    """Parse an image input size 'CxHxW' into (c, h, w) of positive ints."""
    return tuple(_parse_dims(text, (3,), '3x256x256'))


def parse_frame_size(text: str) -> tuple[int, int, int]:
    """Parse a video frame size 'HxW' (3 channels) or 'CxHxW' into (c, h, w) of positive ints."""
    dims = _parse_dims(text, (2, 3), '180x320 or 3x180x320')
    return tuple(dims) if len(dims) == 3 else (DEFAULT_CHANNELS, *dims)


def parse_positive(text: str) -> int:
    """Parse a positive int."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
    return int(text)


def parse_non_negative(text: str) -> int:
    """Parse an int >= 0."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f'expected an integer >= 0, got {text!r}')
    return int(text)


def parse_tolerance(text: str) -> float:
    """Parse a finite float > 0."""
    try:
        value = float(text)
    except ValueError:
        value = float('nan')
    if not value > 0 or value == float('inf'):
        raise argparse.ArgumentTypeError(f'expected a number > 0 such as 1e-4, got {text!r}')
    return value


def output_file_problem(path: str, suffix: str | None = None) -> str | None:
    """Why the file ``path`` cannot be written (a folder, a name ending in a slash, a missing parent folder, another
    suffix than ``suffix``), or None: for the refusal before any work."""
    if path.endswith(('/', os.sep)):
        return f'{path} names a folder (it ends with a slash); give a file name'
    if Path(path).is_dir():
        return f'{path} is a folder; give a file name'
    if suffix is not None and not path.lower().endswith(suffix):
        return f'{path} does not end in {suffix}'
    if not Path(path).parent.is_dir():
        return f'folder not found: {Path(path).parent} (create it first)'
    return None


def check_output_file(parser: argparse.ArgumentParser, option: str, path: str | None,
                      suffix: str | None = None) -> None:
    """``parser.error`` naming ``option`` when the file ``path`` (None: not asked for) cannot be written."""
    problem = None if path is None else output_file_problem(path, suffix)
    if problem:
        parser.error(f'argument {option}: {problem}')


def say(message: str) -> None:
    """One line of progress or warning on stderr (stdout keeps the command's result)."""
    print(message, file=sys.stderr, flush=True)


def add_network_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The 'network' group: -opt/--options, --checkpoint and --param-key (returned for more arguments)."""
    group = parser.add_argument_group('network')
    group.add_argument('-opt', '--options', required=True, metavar='OPTIONS',
                       help='BasicSR options YAML (network_g) or MMagic config .py (model.generator)')
    group.add_argument('--checkpoint', required=True, metavar='CKPT',
                       help='weights: a BasicSR or MMagic checkpoint, or a bare state dict')
    group.add_argument('--param-key', metavar='KEY',
                       help='checkpoint entry to load (default: params_ema, params or state_dict)')
    return group


def is_video_network(parser: argparse.ArgumentParser, options: str) -> bool:
    """Whether ``options`` describe a video network (``is_video_options``); a missing or unreadable options file
    exits through ``parser.error`` naming -opt/--options."""
    try:
        return is_video_options(options)
    except (FileNotFoundError, ModelBuildError) as error:
        parser.error(f'argument -opt/--options: {error}')


def build_network(parser: argparse.ArgumentParser, options: str, checkpoint: str | None, param_key: str | None,
                  checkpoint_option: str = '--checkpoint') -> tuple[nn.Module, bool]:
    """The network of ``options`` with ``checkpoint`` loaded (none: random weights), in its deployed form when it
    has ``to_plain()``; returns it and whether it is that deployed form. Errors exit through ``parser.error``,
    naming -opt/--options or ``checkpoint_option``."""
    try:
        model = build_model_from_options(options)
    except (FileNotFoundError, ModelBuildError) as error:
        parser.error(f'argument -opt/--options: {error}')
    if checkpoint:
        try:
            load_checkpoint(model, checkpoint, param_key)
        except (FileNotFoundError, ModelBuildError) as error:
            parser.error(f'argument {checkpoint_option}: {error}')
    deployed = deployed_form(model)
    return (model, False) if deployed is None else (deployed, True)
