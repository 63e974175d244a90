"""Build the network described by a BasicSR options YAML or an MMagic / mmengine python config, and load weights.

BasicSR: ``network_g`` is built by ``effsr_core.basicsr.build`` (BasicSR's archs and every plugin's). MMagic:
``model.generator`` is built by ``effsr_core.mmagic.build``. Weights are loaded with
``load_state_dict(strict=True)`` because some networks rebuild themselves from their state dict (e.g. a pruned
network whose channel plan is stored as extra state): count them only after loading.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from torch import nn

from effsr_core.checkpoints import CheckpointError, load_weights, read_generator_state
from effsr_core.options import OptionError

PYTHON_CONFIG_SUFFIX = '.py'
YAML_SUFFIXES = ('.yml', '.yaml')


class ModelBuildError(ValueError):
    """The options file or checkpoint cannot give a network (unknown arch, missing section, bad weights)."""


def read_options(path: str | Path) -> tuple[str, Any]:
    """Parse an options file; returns ('basicsr', dict) or ('mmagic', mmengine Config)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'Options file not found: {path}')
    if path.suffix in YAML_SUFFIXES:
        with path.open() as stream:
            options = yaml.safe_load(stream)
        if not isinstance(options, dict) or not isinstance(options.get('network_g'), dict):
            raise ModelBuildError(f'{path}: a BasicSR options file needs a "network_g" mapping with a "type".')
        return 'basicsr', options
    if path.suffix == PYTHON_CONFIG_SUFFIX:
        from effsr_core.mmagic.build import read_config

        config = read_config(path)
        if not isinstance(config.get('model'), dict) or not isinstance(config.model.get('generator'), dict):
            raise ModelBuildError(f'{path}: an MMagic config needs "model.generator" with a "type".')
        return 'mmagic', config
    raise ModelBuildError(f'{path}: expected a BasicSR options YAML ({"/".join(YAML_SUFFIXES)}) '
                          f'or an MMagic config ({PYTHON_CONFIG_SUFFIX}).')


def is_video_options(path: str | Path) -> bool:
    """Whether the options describe a video model taking (b, t, c, h, w) input.

    Rule: see ``is_video_model`` in ``effsr_core.basicsr.build`` and ``effsr_core.mmagic.build``.

    Args:
        path: BasicSR options YAML or MMagic python config.

    Returns:
        True for a video model.
    """
    framework, options = read_options(path)
    return _toolbox(framework).is_video_model(options)


def _toolbox(framework: str):
    """The build module of one toolbox (importing it registers every plugin there)."""
    if framework == 'basicsr':
        from effsr_core.basicsr import build
    else:
        from effsr_core.mmagic import build
    return build


def load_checkpoint(model: nn.Module, path: str | Path, param_key: str | None = None) -> None:
    """Load generator weights into ``model`` with ``load_state_dict(strict=True)``.

    Args:
        model: The built network.
        path: BasicSR checkpoint (``params`` / ``params_ema``), mmengine / MMagic checkpoint
            (``state_dict`` with ``generator.`` keys) or a bare state dict; ``module.`` prefixes are stripped.
        param_key: Entry to read (default: ``params_ema`` when present, else ``params``, or ``state_dict``).
    """
    try:
        load_weights(model, read_generator_state(path, param_key), strict=True, source=str(path))
    except CheckpointError as error:
        raise ModelBuildError(str(error)) from None


def build_model_from_options(path: str | Path, checkpoint: str | Path | None = None,
                             param_key: str | None = None) -> nn.Module:
    """Build the generator described by an options file, optionally loading a checkpoint.

    Args:
        path: BasicSR options YAML (``network_g``) or MMagic python config (``model.generator``).
        checkpoint: Optional weights (see ``load_checkpoint``).
        param_key: Checkpoint entry to read instead of the default choice.

    Returns:
        The network in eval mode, on the CPU.
    """
    framework, options = read_options(path)
    try:
        if framework == 'basicsr':
            model = _toolbox(framework).build_network(options['network_g'])
        else:
            model = _toolbox(framework).build_generator(options.model.generator)
    except OptionError as error:
        raise ModelBuildError(str(error)) from error
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, param_key)
    return model.eval()


def deployed_form(model: nn.Module) -> nn.Module | None:
    """The form a network deploys as, when it differs from the trained one: ``to_plain()`` of a network trained
    re-parameterisable (e.g. RepSR), in eval mode; None for a network that deploys as it is."""
    if callable(getattr(model, 'to_plain', None)):
        return model.to_plain().eval()
    return None


def frozen(net: nn.Module) -> nn.Module:
    """``net`` in eval mode without gradients (a teacher: SSL's Temporal Finetuning, MemSR's distillation)."""
    return net.eval().requires_grad_(False)
