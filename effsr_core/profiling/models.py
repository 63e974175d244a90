"""Build the network described by a BasicSR options YAML or an MMagic / mmengine python config, and load weights.

BasicSR: ``network_g`` is built through ``basicsr.utils.registry.ARCH_REGISTRY`` (BasicSR's archs and the plugins'
published by ``effsr_core.frameworks.basicsr_plugins.register_all``). MMagic: ``model.generator`` is built through
``mmagic.registry.MODELS`` after ``effsr_core.frameworks.mmagic_plugins`` is imported. Weights are loaded with
``load_state_dict(strict=True)`` because some networks rebuild themselves from their state dict (e.g. a pruned
network whose channel plan is stored as extra state): count them only after loading.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from torch import nn

from effsr_core.checkpoints import CheckpointError, read_generator_state

PYTHON_CONFIG_SUFFIX = '.py'
YAML_SUFFIXES = ('.yml', '.yaml')
#: MMagic model types (besides those containing 'VSR') whose generator takes (b, t, c, h, w) input.
MMAGIC_VIDEO_MODEL_TYPES = ('EDVR', 'TDAN')


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

    Rule: a BasicSR ``model_type`` whose class derives from BasicSR's ``VideoBaseModel`` (VideoRecurrentModel,
    the SSL pruning model, ...); an MMagic ``model.type`` containing 'VSR' (BasicVSR, SSLPruningVSR, ...) or listed
    in ``MMAGIC_VIDEO_MODEL_TYPES``.

    Args:
        path: BasicSR options YAML or MMagic python config.

    Returns:
        True for a video model.
    """
    framework, options = _read_options(path)
    if framework == 'basicsr':
        from effsr_core.frameworks.basicsr_plugins import register_all

        register_all()
        from basicsr.models.video_base_model import VideoBaseModel
        from basicsr.utils.registry import MODEL_REGISTRY

        model_type = options.get('model_type', 'SRModel')
        return model_type in MODEL_REGISTRY and issubclass(MODEL_REGISTRY.get(model_type), VideoBaseModel)
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


def load_checkpoint(model: nn.Module, path: str | Path, param_key: str | None = None) -> None:
    """Load generator weights into ``model`` with ``load_state_dict(strict=True)``.

    Args:
        model: The built network.
        path: BasicSR checkpoint (``params`` / ``params_ema``), mmengine / MMagic checkpoint
            (``state_dict`` with ``generator.`` keys) or a bare state dict; ``module.`` prefixes are stripped.
        param_key: Entry to read (default: ``params_ema`` when present, else ``params``, or ``state_dict``).
    """
    try:
        state = read_generator_state(path, param_key)
    except CheckpointError as error:
        raise ModelBuildError(str(error)) from error
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
