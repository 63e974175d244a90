"""LR schedulers for BasicSR models: BasicSR's own names plus every registered ``lr_scheduler`` component.

BasicSR has no scheduler registry (``BaseModel.setup_schedulers`` is an if/else over three names), so the plugins'
BasicSR models inherit ``RegisteredSchedulers``, which builds a registered scheduler by its ``train.scheduler.type``
and leaves every other name to BasicSR.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping

from effsr_core import registry
from effsr_core.basicsr.plugin_model import declarations

BASICSR_SCHEDULERS = ('MultiStepLR', 'MultiStepRestartLR', 'CosineAnnealingRestartLR')


def supported_schedulers(model_cls: type) -> tuple[str, ...]:
    """The ``train.scheduler.type`` values a BasicSR model class accepts."""
    if isinstance(model_cls, type) and issubclass(model_cls, RegisteredSchedulers):
        return BASICSR_SCHEDULERS + tuple(registry.components('lr_scheduler'))
    return BASICSR_SCHEDULERS


class RegisteredSchedulers:
    """Mixin for a BasicSR model (put it before the BasicSR base class)."""

    def setup_schedulers(self) -> None:
        options = copy.deepcopy(self.opt['train'].get('scheduler') or {})
        name = options.pop('type', None)
        scheduler_cls = registry.components('lr_scheduler').get(name)
        if scheduler_cls is None:
            super().setup_schedulers()
            return
        options = self.scheduler_arguments(name, options)
        self.schedulers.extend(scheduler_cls(optimizer, **options) for optimizer in self.optimizers)

    def scheduler_arguments(self, name: str, options: dict) -> dict:
        """Keyword arguments of the registered scheduler ``name``: ``train.scheduler`` without ``type``. A mixin
        whose scheduler takes its settings from elsewhere in the options (e.g. the multigrid section) overrides it."""
        return options


def schedule_offset(model_cls: type, opt: Mapping[str, Any]) -> int:
    """Iterations before ``train.scheduler`` starts for this model class (``PluginModel.schedule_offset``)."""
    return int(declarations(model_cls).schedule_offset(opt))
