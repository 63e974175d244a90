"""LR schedulers for BasicSR models: BasicSR's own names plus every registered ``lr_scheduler`` component.

BasicSR has no scheduler registry (``BaseModel.setup_schedulers`` is an if/else over three names), so the plugins'
BasicSR models inherit ``RegisteredSchedulers``, which builds a registered scheduler by its ``train.scheduler.type``
and leaves every other name to BasicSR.
"""
from __future__ import annotations

import copy

from effsr_core import registry

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
        scheduler_cls = registry.components('lr_scheduler').get(options.pop('type', None))
        if scheduler_cls is None:
            super().setup_schedulers()
            return
        self.schedulers.extend(scheduler_cls(optimizer, **options) for optimizer in self.optimizers)
