"""Build a network from a BasicSR options dict (``network_g``), and tell whether its model is a video model."""
from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from effsr_core.options import OptionError


def build_network(arch_options: Mapping[str, Any]) -> nn.Module:
    """``network_g`` → module, through ``ARCH_REGISTRY`` (BasicSR's archs and every plugin's)."""
    from basicsr.utils.registry import ARCH_REGISTRY

    kwargs = dict(arch_options)
    arch_type = kwargs.pop('type', None)
    if arch_type not in ARCH_REGISTRY:
        raise OptionError(f'Unknown BasicSR arch {arch_type!r} in network_g.type.')
    try:
        return ARCH_REGISTRY.get(arch_type)(**kwargs)
    except TypeError as error:
        raise OptionError(f'network_g does not fit {arch_type}: {error}') from error


def is_video_model(options: Mapping[str, Any]) -> bool:
    """Whether ``model_type`` derives from BasicSR's ``VideoBaseModel`` (VideoRecurrentModel, SSLPruningModel...)."""
    from basicsr.models.video_base_model import VideoBaseModel
    from basicsr.utils.registry import MODEL_REGISTRY

    model_type = options.get('model_type', 'SRModel')
    return model_type in MODEL_REGISTRY and issubclass(MODEL_REGISTRY.get(model_type), VideoBaseModel)
