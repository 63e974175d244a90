"""The dynamic learning rate of multigrid training (Lin et al., Eq. 1) with linear warmup, and the linear scaling
rule for large minibatches (Sec. 3.2).

The LR restarts at the baseline's eta at the first iteration of every stage (a larger, harder task deserves
exploration) and decays with a cosine inside the stage. For stages 1..p-1 the cosine's argument is the offset in
the stage over the *whole* training length, x = (t - start_j) / I_total, so those stages never decay to zero; only
the last stage anneals over its own length, x = (t - start_p) / P_p. ``start_j`` is the number of iterations before
stage j and t is 1-based, so the first iteration of a stage has x = 0 (LR = eta) and the last one of the last stage
x = (P_p - 1) / P_p (LR just above ``eta_min``, as with torch's ``CosineAnnealingLR(T_max=P_p)``).

Forms of the decay:

* ``cosine`` (default): 1/2 (1 + cos(pi x)), the cosine annealing the paper's text names and cites (SGDR);
* ``literal``: cos(x), Eq. 1 as printed. Without pi and 1/2 it only falls to cos(1) = 0.54 eta at the end of
  training, which contradicts "anneal"; it is kept for reproducing the printed formula.

Warmup multiplies the whole LR by min(1, t / W) (t 1-based, W = ``warmup_iter``): the LR rises linearly towards the
stage-1 cosine (not towards a constant eta) and joins it without a jump at t = W; a stage that starts inside the
warmup restarts at its warmed-up value. The factor t / W is the one BasicSR's own warmup uses, which this
replaces: set BasicSR's ``train.warmup_iter`` to -1 (BasicSR would otherwise overwrite these LRs during warmup
with ``initial_lr * t / W``).
"""
from __future__ import annotations

import math
from typing import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from effsr_core.options import OptionError
from effsr_core.registry import register
from multigrid_plugin.options import FORMS, MULTIGRID, MultigridSettings, check_eta_min, resolve
from multigrid_plugin.schedule import MultigridSchedule


def stage_decay(schedule: MultigridSchedule, iteration: int, form: str = 'cosine') -> float:
    """Eq. 1 over eta: 1 at the first iteration of every stage, decaying inside it (past the end: the last value
    the last stage tends to, 0 for ``cosine``)."""
    if form not in FORMS:
        raise ValueError(f'form: {form!r} is not one of {", ".join(FORMS)}.')
    stage = schedule.stage_at(iteration)
    offset = iteration - stage.first_iter
    if stage.index == schedule.num_stages - 1:
        x = min(offset / stage.length, 1.0)
    else:
        x = offset / schedule.total_iter
    return math.cos(x) if form == 'literal' else 0.5 * (1.0 + math.cos(math.pi * x))


def warmup_factor(iteration: int, warmup_iter: int) -> float:
    """Linear warmup factor min(1, t / W) of a 1-based iteration (1 without warmup)."""
    return min(1.0, iteration / warmup_iter) if warmup_iter > 0 else 1.0


def multigrid_lr(schedule: MultigridSchedule, iteration: int, base_lr: float, eta_min: float = 0.0,
                 warmup_iter: int = 0, form: str = 'cosine',
                 spatial_lr_factors: Sequence[float] | None = None) -> float:
    """The LR of a 1-based iteration: warmup x (eta_min + (eta - eta_min) x decay), where eta is ``base_lr`` times
    the factor of the stage's spatial size (``spatial_lr_factors``, one per ``schedule.spatial_sizes``)."""
    decay = stage_decay(schedule, iteration, form)
    eta = base_lr * stage_lr_factor(schedule, iteration, spatial_lr_factors)
    return warmup_factor(iteration, warmup_iter) * (eta_min + (eta - eta_min) * decay)


def stage_lr_factor(schedule: MultigridSchedule, iteration: int, spatial_lr_factors: Sequence[float] | None) -> float:
    """The LR multiplier of the stage of a 1-based iteration (1 without factors)."""
    if spatial_lr_factors is None:
        return 1.0
    return spatial_lr_factors[schedule.spatial_sizes.index(schedule.stage_at(iteration).patch_size)]


def linear_scaling(base_batch: int, base_lr: float, batch: int) -> float:
    """The linear scaling rule (Goyal et al.): the LR grows with the minibatch, e.g. 16 / 2e-4 -> 64 / 8e-4."""
    if base_batch < 1 or batch < 1 or base_lr <= 0:
        raise ValueError(f'linear_scaling: batch sizes ({base_batch}, {batch}) must be >= 1 and the LR '
                         f'({base_lr}) > 0.')
    return base_lr * batch / base_batch


_EXAMPLE = {'total_iter': 12, 'spatial_sizes': [16, 32], 'temporal_sizes': [3, 5], 'warmup_iter': 3}


@register('lr_scheduler', example={'kwargs': _EXAMPLE, 'steps': 5})
class MultigridLR(LRScheduler):
    """Eq. 1 with warmup as a torch LR scheduler, stepped once per iteration after the optimizer.

    Each param group's base LR (its ``initial_lr``, set from ``lr`` when the scheduler is built) plays eta, so
    groups with different LRs keep their ratio. After n steps the LR is that of iteration n + 1 (BasicSR's
    convention: built before iteration 1, stepped from iteration 2 on; mmengine steps after each iteration).

    The state is only the step count and LRs (plain data): the schedule comes from the arguments, and the stage
    from the step count, so a resumed run rebuilt from its options continues exactly.

    Built either from a run's resolved ``settings`` (what the toolbox adapters pass: nothing is checked again but
    the floor against this optimizer's LRs) or, framework-free, from the section's keys, resolved here.

    Args:
        optimizer: the wrapped optimizer.
        total_iter: training iterations (I_total); not with ``settings``.
        baseline_patch_size, baseline_frames: the baseline's LR patch size and frames, used where
            ``spatial_sizes`` / ``temporal_sizes`` are null (the paper's defaults); not with ``settings``.
        last_epoch: torch's resume argument (steps already taken), normally -1.
        settings: a run's ``MultigridSettings`` (``multigrid_plugin.options.resolve``).
        **options: the keys of the ``multigrid`` option section (``multigrid_plugin.options.MULTIGRID``):
            spatial_sizes, temporal_sizes, order, mode, stage_iters, warmup_iter, eta_min, form,
            spatial_lr_factors; not with ``settings``.
    """

    #: Attributes rebuilt from the arguments, kept out of ``state_dict``.
    _configuration = ('settings', 'schedule', 'warmup_iter', 'eta_min', 'form', 'spatial_lr_factors')

    def __init__(self, optimizer: Optimizer, total_iter: int | None = None, baseline_patch_size: int | None = None,
                 baseline_frames: int | None = None, last_epoch: int = -1, *,
                 settings: MultigridSettings | None = None, **options):
        name = type(self).__name__
        if settings is None:
            if total_iter is None:
                raise OptionError(f'{name}: needs total_iter (or the settings of a resolved multigrid section).')
            settings = resolve(MULTIGRID.check(options, prefix=name), total_iter, name,
                               baseline_patch_size=baseline_patch_size, baseline_frames=baseline_frames)
        elif options or any(value is not None for value in (total_iter, baseline_patch_size, baseline_frames)):
            raise OptionError(f'{name}: takes either resolved settings or the multigrid keys and total_iter, not '
                              'both.')
        self.settings = settings
        self.schedule = settings.schedule
        self.warmup_iter, self.eta_min, self.form = settings.warmup_iter, settings.eta_min, settings.form
        self.spatial_lr_factors = settings.spatial_lr_factors
        check_eta_min(self.eta_min, min(group.get('initial_lr', group['lr']) for group in optimizer.param_groups),
                      self.spatial_lr_factors, settings.name)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        iteration = self.last_epoch + 1
        return [multigrid_lr(self.schedule, iteration, base_lr, self.eta_min, self.warmup_iter, self.form,
                             self.spatial_lr_factors) for base_lr in self.base_lrs]

    def state_dict(self) -> dict:
        return {key: value for key, value in super().state_dict().items() if key not in self._configuration}
