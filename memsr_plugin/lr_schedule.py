"""The one-cycle LR schedule MemSR trains with (Sec. 4.1: PyTorch's OneCycleLR, max LR 2e-4), registered so that
BasicSR models (which have no such scheduler) and MMagic configs (wrapped as a param scheduler) use it by name.
mmengine's own ``OneCycleLR`` pickles its annealing function into checkpoints, which the safe reading of
``effsr_core.checkpoints`` refuses on resume; PyTorch's keeps only data."""
from __future__ import annotations

from torch.optim.lr_scheduler import OneCycleLR

from effsr_core.registry import register


@register('lr_scheduler', example={'kwargs': {'max_lr': 0.1, 'total_steps': 20}, 'steps': 5})
class PyTorchOneCycleLR(OneCycleLR):
    """``torch.optim.lr_scheduler.OneCycleLR`` stepped once per iteration (``total_steps``: the run's iterations).

    Named apart from mmengine's ``OneCycleLR`` param scheduler (registry names must not clash); the arguments are
    PyTorch's (``max_lr``, ``total_steps``, ``pct_start``, ``anneal_strategy``, ``div_factor``, ...).
    """
