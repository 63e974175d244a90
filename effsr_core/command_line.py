"""Pieces shared by the command lines that build a network from options and a checkpoint (``effsr_core.profile``,
``effsr_core.infer``, ``effsr_core.export``)."""
from __future__ import annotations

import argparse
import sys

from torch import nn

from effsr_core.networks import (ModelBuildError, build_model_from_options, deployed_form, is_video_options,
                                         load_checkpoint)


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
