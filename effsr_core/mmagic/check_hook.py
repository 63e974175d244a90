"""MMagic hook ``ConfigCheckHook``: the one place an MMagic run's config is checked before the first iteration,
as ``effsr_core.basicsr.options_check`` is for BasicSR.

The plugins' hooks (``SSLPruningHook``, ``MultigridHook``) derive from it: its ``before_run`` runs
``check_mmagic_config`` once per runner, however many of them a config lists, and a subclass that overrides
``before_run`` calls it first, then checks what is its own. A config without plugin hooks can list it itself::

    custom_hooks = [dict(type='ConfigCheckHook')]

``before_run`` comes after mmengine has built the model, the loops and the optimizer (a missing annotation file or
an unknown metric has already failed with its own error) and before any weights are loaded or a frame is read.
"""
from __future__ import annotations

from weakref import WeakSet

from mmagic.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.runner import Runner

from effsr_core.mmagic.config_check import check_mmagic_config

#: Runners whose config has been checked (a runner is checked once, however many hooks derive from this one).
_CHECKED: WeakSet = WeakSet()


@HOOKS.register_module()
class ConfigCheckHook(Hook):
    """Refuses, in ``before_run``, a config whose data cannot be read as configured (``check_mmagic_config``)."""

    priority = 'VERY_HIGH'

    def before_run(self, runner: Runner) -> None:
        if runner not in _CHECKED:
            check_mmagic_config(runner.cfg)
            _CHECKED.add(runner)
