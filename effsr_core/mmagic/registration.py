"""Publish the core's and every declared plugin's components to MMagic's / mmengine's registries."""
from __future__ import annotations

from effsr_core import compat, registry
from effsr_core.mmagic import refusals
from effsr_core.plugins import import_plugins

compat.install()


def register_all() -> None:
    """Idempotent: architectures and losses into ``MODELS``, LR schedulers (wrapped) into ``PARAM_SCHEDULERS``,
    then each plugin's ``mmagic`` subpackage (its models and hooks); refused runs end in one line
    (``effsr_core.mmagic.refusals``)."""
    from mmagic.registry import MODELS, PARAM_SCHEDULERS

    from effsr_core.mmagic.schedulers import wrap_lr_scheduler

    import_plugins()

    def scheduler_in_mmengine(name):  # a wrapped scheduler counts as the component it wraps
        found = PARAM_SCHEDULERS.get(name)  # (get also searches mmengine's own registries)
        return getattr(found, 'scheduler_cls', found)

    for kind in ('arch', 'loss'):
        registry.publish(kind, MODELS.get, lambda name, cls: MODELS.register_module(name=name, module=cls),
                         toolbox='MMagic')
    registry.publish('lr_scheduler', scheduler_in_mmengine,
                     lambda name, cls: PARAM_SCHEDULERS.register_module(name=name, module=wrap_lr_scheduler(cls)),
                     toolbox='mmengine')
    import_plugins(toolbox='mmagic')
    refusals.install()  # a refused run ends in one line, leaving no work_dir, whatever script runs it
