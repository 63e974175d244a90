"""Read an MMagic / mmengine config and build its ``model.generator``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from torch import nn

from effsr_core.options import OptionError

#: MMagic model types (besides those containing 'VSR') whose generator takes (b, t, c, h, w) input.
VIDEO_MODEL_TYPES = ('EDVR', 'TDAN')


def read_config(path: str | Path):
    """The mmengine ``Config`` of a python config file."""
    from mmengine.config import Config

    return Config.fromfile(str(path))


def config_text(options: Mapping[str, Any]) -> str:
    """A python config file's text for ``options`` (a plain dict: bases already merged)."""
    from mmengine.config import Config

    return Config(dict(options)).pretty_text


def build_generator(generator_config: Mapping[str, Any]) -> nn.Module:
    """``model.generator`` → module, through ``mmagic.registry.MODELS`` (MMagic's and every plugin's)."""
    from mmengine.registry import init_default_scope

    from mmagic.registry import MODELS

    init_default_scope('mmagic')
    generator_type = generator_config.get('type')
    if not isinstance(generator_type, str) or MODELS.get(generator_type) is None:
        raise OptionError(f'Unknown MMagic model {generator_type!r} in model.generator.type.')
    return MODELS.build(dict(generator_config))


def is_video_model(config) -> bool:
    """A ``model.type`` containing 'VSR' (BasicVSR, SSLPruningVSR...) or listed in ``VIDEO_MODEL_TYPES``."""
    model_type = str(config.model.get('type', ''))
    return 'VSR' in model_type or model_type in VIDEO_MODEL_TYPES
