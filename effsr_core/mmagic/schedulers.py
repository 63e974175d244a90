"""A registered torch LR scheduler (``effsr_core.registry`` kind ``lr_scheduler``) as an mmengine param scheduler.

mmengine builds schedulers as ``cls(optimizer=<OptimWrapper>, begin=..., end=..., by_epoch=..., epoch_length=...,
**config)`` and steps those with ``by_epoch=False`` after every training iteration. The wrapper unwraps the
optimizer, builds the torch scheduler with the remaining options, steps it inside ``[begin, end)`` and keeps both
in its ``state_dict`` (so ``--resume`` continues the schedule). It subclasses mmengine's ``_ParamScheduler`` (without
its ``__init__``) because ``Runner.resume`` passes the built schedulers through ``build_param_scheduler`` again,
which only accepts ``_ParamScheduler`` instances or dicts.
"""
from __future__ import annotations

from typing import Any

from mmengine.optim import OptimWrapper, _ParamScheduler


class RegisteredLRScheduler(_ParamScheduler):
    """Base of the generated wrappers; ``scheduler_cls`` is the wrapped torch ``LRScheduler`` subclass."""

    scheduler_cls: type = None

    def __init__(self, optimizer, begin: int = 0, end: int | None = None, by_epoch: bool = True,
                 epoch_length: int | None = None, **options: Any):
        # _ParamScheduler.__init__ (one param_name on an OptimWrapper) is not called: the torch scheduler does the work
        name = self.scheduler_cls.__name__
        if by_epoch:
            raise ValueError(f'param_scheduler {name}: only iteration-based scheduling is supported; '
                             'set by_epoch=False.')
        if end is not None and end <= begin:
            raise ValueError(f'param_scheduler {name}: end ({end}) must be greater than begin ({begin}).')
        self.by_epoch = False
        self.begin, self.end = begin, end
        self.optimizer = optimizer.optimizer if isinstance(optimizer, OptimWrapper) else optimizer
        self.scheduler = self.scheduler_cls(self.optimizer, **options)
        self.last_step = 0

    def step(self) -> None:
        self.last_step += 1
        if self.begin <= self.last_step and (self.end is None or self.last_step < self.end):
            self.scheduler.step()

    def get_last_value(self) -> list[float]:
        return self.scheduler.get_last_lr()

    def state_dict(self) -> dict:
        return {'last_step': self.last_step, 'scheduler': self.scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.last_step = state['last_step']
        self.scheduler.load_state_dict(state['scheduler'])


def wrap_lr_scheduler(scheduler_cls: type) -> type:
    """A ``RegisteredLRScheduler`` subclass for ``scheduler_cls``, named like it (mmengine's registry uses it)."""
    return type(scheduler_cls.__name__, (RegisteredLRScheduler,), {
        'scheduler_cls': scheduler_cls, '__doc__': f'{scheduler_cls.__name__} as an mmengine param scheduler.'})
