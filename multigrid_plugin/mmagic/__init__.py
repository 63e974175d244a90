"""Multigrid in MMagic: hook ``MultigridHook`` (imported by ``effsr_core.mmagic``); the LR scheduler
``MultigridLR`` reaches mmengine's ``PARAM_SCHEDULERS`` through ``effsr_core``'s registry."""
from multigrid_plugin.mmagic.hook import MultigridHook

__all__ = ['MultigridHook']
