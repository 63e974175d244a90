"""Build the network described by a BasicSR options YAML or an MMagic / mmengine python config, and load weights.

BasicSR: ``network_g`` is built through ``basicsr.utils.registry.ARCH_REGISTRY`` (BasicSR's archs and the plugins'
published by ``effsr_core.frameworks.basicsr_plugins.register_all``). MMagic: ``model.generator`` is built through
``mmagic.registry.MODELS`` after ``effsr_core.frameworks.mmagic_plugins`` is imported. Weights are loaded with
``load_state_dict(strict=True)`` because some networks rebuild themselves from their state dict (e.g. a pruned
network whose channel plan is stored as extra state): count them only after loading.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

PYTHON_CONFIG_SUFFIX = '.py'
YAML_SUFFIXES = ('.yml', '.yaml')
#: MMagic model types (besides those containing 'VSR') whose generator takes (b, t, c, h, w) input.
MMAGIC_VIDEO_MODEL_TYPES = ('EDVR', 'TDAN')
CHECKPOINT_PREFIXES = ('generator.', 'module.')


class ModelBuildError(ValueError):
    """The options file or checkpoint cannot give a network (unknown arch, missing section, bad weights)."""


def _read_options(path: str | Path) -> tuple[str, Any]:
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
        from effsr_core import compat

        compat.install()
        from mmengine.config import Config

        config = Config.fromfile(str(path))
        if not isinstance(config.get('model'), dict) or not isinstance(config.model.get('generator'), dict):
            raise ModelBuildError(f'{path}: an MMagic config needs "model.generator" with a "type".')
        return 'mmagic', config
    raise ModelBuildError(f'{path}: expected a BasicSR options YAML ({"/".join(YAML_SUFFIXES)}) '
                          f'or an MMagic config ({PYTHON_CONFIG_SUFFIX}).')


def is_video_options(path: str | Path) -> bool:
    """Whether the options describe a video model taking (b, t, c, h, w) input.

    Rule: BasicSR ``model_type`` containing 'Video' (VideoBaseModel, VideoRecurrentModel, ...); MMagic
    ``model.type`` containing 'VSR' (BasicVSR, RealBasicVSR, ...) or listed in ``MMAGIC_VIDEO_MODEL_TYPES``.

    Args:
        path: BasicSR options YAML or MMagic python config.

    Returns:
        True for a video model.
    """
    framework, options = _read_options(path)
    if framework == 'basicsr':
        return 'Video' in str(options.get('model_type', ''))
    model_type = str(options.model.get('type', ''))
    return 'VSR' in model_type or model_type in MMAGIC_VIDEO_MODEL_TYPES


def _build_basicsr(arch_options: dict[str, Any]) -> nn.Module:
    from effsr_core.frameworks.basicsr_plugins import register_all

    register_all()
    import basicsr.archs  # noqa: F401  (importing it registers BasicSR's own architectures)
    from basicsr.utils.registry import ARCH_REGISTRY

    kwargs = dict(arch_options)
    arch_type = kwargs.pop('type', None)
    if arch_type not in ARCH_REGISTRY:
        raise ModelBuildError(f'Unknown BasicSR arch {arch_type!r} in network_g.type.')
    try:
        return ARCH_REGISTRY.get(arch_type)(**kwargs)
    except TypeError as error:
        raise ModelBuildError(f'network_g does not fit {arch_type}: {error}') from error


def _build_mmagic(generator_config: dict[str, Any]) -> nn.Module:
    import effsr_core.frameworks.mmagic_plugins  # noqa: F401  (importing it registers the plugins in MMagic)
    from mmengine.registry import init_default_scope
    from mmagic.registry import MODELS

    init_default_scope('mmagic')
    generator_type = generator_config.get('type')
    if not isinstance(generator_type, str) or MODELS.get(generator_type) is None:
        raise ModelBuildError(f'Unknown MMagic model {generator_type!r} in model.generator.type.')
    return MODELS.build(generator_config)


def _state_dict_from_checkpoint(checkpoint: Any, param_key: str | None) -> dict[str, torch.Tensor]:
    """Pick the generator weights of a BasicSR, mmengine or bare checkpoint and strip wrapper prefixes."""
    if not isinstance(checkpoint, dict):
        raise ModelBuildError(f'A checkpoint must hold a dict, got {type(checkpoint).__name__}.')
    if param_key is not None:
        if param_key not in checkpoint:
            raise ModelBuildError(f'Checkpoint has no {param_key!r}; keys: {", ".join(map(str, checkpoint))}.')
        state = checkpoint[param_key]
    elif 'state_dict' in checkpoint:  # mmengine / MMagic
        state = checkpoint['state_dict']
    elif 'params_ema' in checkpoint or 'params' in checkpoint:  # BasicSR: prefer the EMA weights
        state = checkpoint.get('params_ema', checkpoint.get('params'))
    else:
        state = checkpoint
    if any(key.startswith('generator.') for key in state):  # an MMagic editor: keep only its generator
        state = {key: value for key, value in state.items() if key.startswith('generator.')}
    for prefix in CHECKPOINT_PREFIXES:
        state = {key.removeprefix(prefix): value for key, value in state.items()}
    return state


def _load_checkpoint_file(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True``, except for mmengine checkpoints (see below)."""
    # Only zip checkpoints (torch >= 1.6) can be inspected; legacy ones go straight to the weights-only loader.
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) if zipfile.is_zipfile(path) else []
    # mmengine checkpoints pickle training state (message hub, HistoryBuffer, ...) beside the weights, which the
    # weights-only unpickler refuses; they are trusted here only because they come from mmengine.
    trusted_mmengine = any(name.startswith('mmengine.') for name in unsafe)
    return torch.load(path, map_location='cpu', weights_only=not trusted_mmengine)


def load_checkpoint(model: nn.Module, path: str | Path, param_key: str | None = None) -> None:
    """Load generator weights into ``model`` with ``load_state_dict(strict=True)``.

    Args:
        model: The built network.
        path: BasicSR checkpoint (``params`` / ``params_ema``), mmengine / MMagic checkpoint
            (``state_dict`` with ``generator.`` keys) or a bare state dict; ``module.`` prefixes are stripped.
        param_key: Entry to read (default: ``params_ema`` when present, else ``params``, or ``state_dict``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'Checkpoint not found: {path}')
    state = _state_dict_from_checkpoint(_load_checkpoint_file(path), param_key)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ModelBuildError(f'{path} does not fit {type(model).__name__}: {error}') from error


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
    framework, options = _read_options(path)
    if framework == 'basicsr':
        model = _build_basicsr(options['network_g'])
    else:
        model = _build_mmagic(options.model.generator)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, param_key)
    return model.eval()
