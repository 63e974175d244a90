"""Multigrid in MMagic (imported by ``effsr_core.mmagic``): the hook ``MultigridHook``, which holds the multigrid
settings, and the param scheduler ``MultigridLR`` it binds to them (``scheduler``)."""
from multigrid_plugin.mmagic.hook import MultigridHook
from multigrid_plugin.mmagic.scheduler import MultigridParamScheduler

__all__ = ['MultigridHook', 'MultigridParamScheduler']
