"""What a plugin's BasicSR model may declare to the core's adapters: the contract ``options_check``, the scheduler
offset and the resume fix read (BasicSR's own models declare nothing and get the defaults).

A plugin model derives from ``PluginModel`` (before the BasicSR base class) and overrides what it needs::

    @MODEL_REGISTRY.register()
    class SSLPruningModel(PluginModel, RegisteredSchedulers, VideoRecurrentModel):
        option_sections = (PRUNING,)     # its own top-level sections, checked against their declaration
        train_options = BASICSR_TRAIN    # its train: keys beside those of the BasicSR classes it derives from

        @classmethod
        def check_options(cls, opt, check_paths=True): ...   # rules that need the whole options file
        @classmethod
        def schedule_offset(cls, opt): ...                   # train.scheduler starts this many iterations late
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping

from effsr_core.options import OptionSection


class PluginModel:
    """Declarations of a BasicSR model registered by a plugin (class attributes and classmethods, read before the
    model is built).

    Attributes:
        option_sections: top-level sections of the options file this model reads.
        train_options: the ``train:`` keys this class adds to those of its BasicSR bases; a class in the chain that
            declares none (and is not one of BasicSR's own) leaves the train keys unchecked.
        frozen_networks: ``network_*`` keys of networks that are never trained or saved (e.g. a distillation
            teacher): on resume their ``path.pretrain_network_*`` is kept.
    """
    option_sections: ClassVar[tuple[OptionSection, ...]] = ()
    train_options: ClassVar[OptionSection | None] = None
    frozen_networks: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def check_options(cls, opt: Mapping[str, Any], check_paths: bool = True) -> None:
        """Refuse (``OptionError``) what needs the whole options file; ``check_paths`` False: read no file."""

    @classmethod
    def schedule_offset(cls, opt: Mapping[str, Any]) -> int:
        """Iterations before ``train.scheduler`` starts (e.g. SSL's fine-tuning schedule starts after pruning)."""
        return 0


def declarations(model_cls: type) -> type[PluginModel]:
    """``model_cls`` when it is a ``PluginModel``, else the defaults (a BasicSR model declares nothing)."""
    return model_cls if isinstance(model_cls, type) and issubclass(model_cls, PluginModel) else PluginModel


def keep_frozen_networks(opt: dict) -> None:
    """Add the model's ``frozen_networks`` to ``path.ignore_resume_networks``: BasicSR's ``check_resume`` would
    otherwise point their ``pretrain_network_*`` to ``net_*_<iter>.pth`` files that do not exist."""
    from basicsr.utils.registry import MODEL_REGISTRY

    model_type = opt.get('model_type', 'SRModel')
    frozen = declarations(MODEL_REGISTRY.get(model_type)).frozen_networks if model_type in MODEL_REGISTRY else ()
    ignored = list(opt['path'].get('ignore_resume_networks') or [])
    if frozen:
        opt['path']['ignore_resume_networks'] = ignored + [name for name in frozen if name not in ignored]
