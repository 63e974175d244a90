"""The param scheduler ``MultigridLR`` in mmengine: written in a config without multigrid keys, and bound by
``MultigridHook`` to the hook's settings, so the multigrid dict is written once::

    custom_hooks = [dict(type='MultigridHook', **multigrid)]
    param_scheduler = dict(type='MultigridLR', by_epoch=False)

Why the hook holds the settings and the scheduler reads them, not the other way round: only the hook can resolve
them. The paper's default cycles come from the train pipeline (``PairedRandomCrop``'s patch, ``num_input_frames``),
the schedule's length from ``train_cfg.max_iters`` less the hook's ``begin``, and the data checks need them before
the first iteration; a scheduler sees only its optimizer. mmengine builds the param schedulers before any hook
runs, so this one is built unbound, and ``MultigridHook`` binds it (builds the torch ``MultigridLR`` from its
settings) in ``before_run``, before a resume loads its state, and again whenever the schedulers were rebuilt
(``SSLPruningHook`` at pruning and on loading a pruned checkpoint). A config that still gives the scheduler
multigrid keys is refused with one line.

Registered under ``MultigridLR`` in MMagic's ``PARAM_SCHEDULERS`` in place of ``effsr_core``'s generic wrapper of
the torch scheduler (``scheduler_cls`` is the same class, so the registry sees one component).
"""
from __future__ import annotations

from typing import Any

from mmagic.registry import PARAM_SCHEDULERS

from effsr_core.mmagic.schedulers import RegisteredLRScheduler
from effsr_core.options import OptionError
from multigrid_plugin.lr_schedule import MultigridLR
from multigrid_plugin.options import MultigridSettings

NAME = MultigridLR.__name__
HOOK = 'MultigridHook'
#: How a config writes both, for messages.
USAGE = (f"custom_hooks=[dict(type='{HOOK}', **multigrid)] and param_scheduler=dict(type='{NAME}', "
         'by_epoch=False)')


class MultigridParamScheduler(RegisteredLRScheduler):
    """``MultigridLR`` as an mmengine param scheduler, stepping once bound to a ``MultigridHook``'s settings.

    Args:
        optimizer, begin, end, by_epoch, epoch_length: as mmengine passes them (``RegisteredLRScheduler``).
        **options: refused: the multigrid settings are the hook's.
    """

    scheduler_cls = MultigridLR

    def __init__(self, optimizer: Any, begin: int = 0, end: int | None = None, by_epoch: bool = True,
                 epoch_length: int | None = None, **options: Any):
        if options:
            raise OptionError(f'param_scheduler.{next(iter(options))}: {NAME} reads the multigrid settings of '
                              f'{HOOK}; write the multigrid dict once, in the hook: {USAGE}.')
        self._arguments = dict(optimizer=optimizer, begin=begin, end=end, by_epoch=by_epoch,
                               epoch_length=epoch_length)
        self.by_epoch = by_epoch  # read by mmengine's ParamSchedulerHook
        self.scheduler: MultigridLR | None = None

    @property
    def bound(self) -> bool:
        return self.scheduler is not None

    def bind(self, settings: MultigridSettings) -> None:
        """Build the torch scheduler from ``settings`` (sets the LR of the schedule's first iteration)."""
        super().__init__(**self._arguments, settings=settings)

    def _require_bound(self) -> None:
        if self.scheduler is None:
            raise RuntimeError(f'param_scheduler {NAME}: no {HOOK} bound it to its multigrid settings; use {USAGE}.')

    def step(self) -> None:
        self._require_bound()
        super().step()

    def get_last_value(self) -> list[float]:
        self._require_bound()
        return super().get_last_value()

    def state_dict(self) -> dict:
        self._require_bound()
        return super().state_dict()

    def load_state_dict(self, state: dict) -> None:
        self._require_bound()
        super().load_state_dict(state)


PARAM_SCHEDULERS.register_module(name=NAME, module=MultigridParamScheduler, force=True)
