"""Publish the core's and every declared plugin's components to MMagic's / mmengine's registries."""
from __future__ import annotations

from effsr_core import compat, registry
from effsr_core.plugins import import_plugins

compat.install()


def register_all() -> None:
    """Idempotent: architectures and losses into ``MODELS``, LR schedulers (wrapped) into ``PARAM_SCHEDULERS``,
    samplers into ``DATA_SAMPLERS``, then each plugin's ``mmagic`` subpackage (its models and hooks)."""
    from mmagic.registry import DATA_SAMPLERS, MODELS, PARAM_SCHEDULERS

    from effsr_core.mmagic.schedulers import wrap_lr_scheduler

    import_plugins()

    def existing(target):  # this registry or its mmengine parent (e.g. mmengine's own schedulers)
        return lambda name: target.get(name)

    def unwrap(target):  # a wrapped scheduler counts as the component it wraps
        return lambda name: getattr(target.get(name), 'scheduler_cls', target.get(name))

    for kind in ('arch', 'loss'):
        registry.publish(kind, existing(MODELS), lambda name, cls: MODELS.register_module(name=name, module=cls),
                         toolbox='MMagic')
    registry.publish('lr_scheduler', unwrap(PARAM_SCHEDULERS),
                     lambda name, cls: PARAM_SCHEDULERS.register_module(name=name, module=wrap_lr_scheduler(cls)),
                     toolbox='mmengine')
    registry.publish('sampler', existing(DATA_SAMPLERS),
                     lambda name, cls: DATA_SAMPLERS.register_module(name=name, module=cls), toolbox='mmengine')
    import_plugins(toolbox='mmagic')
