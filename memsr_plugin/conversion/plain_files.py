"""A trained network converted to its plain form, checked against it, and written as the toolbox's files (what
``python -m memsr_plugin.convert`` does beyond reading its arguments).

``convert_checked`` converts in float64 and float32 and measures both against the original on random images
(borders included); ``write_plain_files`` writes ``<name>.pth`` (the plain weights, in the toolbox's checkpoint
format), ``<name>.yml`` or ``<name>.py`` (the given options with the plain network in place) and ``<name>.json``
(the architecture and the measured errors).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from effsr_core.checkpoints import atomic_write, save_atomic
from memsr_plugin.archs import PlainConvSR
from memsr_plugin.conversion.compiler import convert
from memsr_plugin.conversion.equivalence import Equivalence, measure_equivalence
from memsr_plugin.option_files import toolbox_of, write_derived_options


@dataclass(frozen=True)
class CheckedConversion:
    """A conversion and its check: the float32 plain network (what is written) and the measured errors."""
    plain: PlainConvSR
    check: Equivalence
    images: int
    size: tuple[int, int]


def convert_checked(network: nn.Module, offset: float, relu_body: bool, size: tuple[int, int],
                    seed: int = 0) -> CheckedConversion:
    """``network``'s plain form (``convert``; NotConvertibleError, a ValueError, when it has none), measured on
    two random ``size`` images from ``seed``."""
    form = {'offset': offset, 'relu_body': relu_body}
    plain64 = convert(network, dtype=torch.float64, **form)
    plain32 = convert(network, dtype=torch.float32, **form)
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.rand(2, plain32.in_channels, *size, generator=generator, dtype=torch.float64)
    return CheckedConversion(plain32, measure_equivalence(network, plain64, plain32, inputs, offset),
                             inputs.shape[0], tuple(size))


def write_plain_files(options: str, checkpoint: str, output: str | Path, name: str, network: nn.Module,
                      converted: CheckedConversion, offset: float, relu_body: bool, seed: int) -> Path:
    """Write the plain weights, the derived options and the summary of ``converted`` into ``output``; returns the
    options written. ``options`` / ``checkpoint``: the original network's files."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    plain = converted.plain
    weights = output / f'{name}.pth'
    config = {'type': 'PlainConvSR', **plain.config()}
    if toolbox_of(options) == 'basicsr':
        save_atomic({'params': plain.state_dict()}, weights)
    else:
        save_atomic({'state_dict': {f'generator.{k}': v for k, v in plain.state_dict().items()}, 'meta': {}},
                    weights)
    written = write_derived_options(
        options, output, name,
        basicsr={'network_g': config, 'path.pretrain_network_g': str(weights), 'path.param_key_g': 'params',
                 'path.strict_load_g': True},
        mmagic={'model.generator': config, 'load_from': str(weights)})
    summary = {'source': {'options': options, 'checkpoint': checkpoint, 'type': type(network).__name__},
               'plain': config, 'offset': offset, 'relu_body': relu_body,
               'check': {'size': list(converted.size), 'seed': seed, **vars(converted.check)},
               'parameters': {'source': sum(p.numel() for p in network.parameters()),
                              'plain': sum(p.numel() for p in plain.parameters())}}
    with atomic_write(output / f'{name}.json', 'w') as stream:
        json.dump(summary, stream, indent=2)
    print(f'wrote {weights}, {written} and {output / f"{name}.json"}')
    return written
