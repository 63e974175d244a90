"""MMagic hook ``MultigridHook``: multigrid training (``multigrid_plugin.schedule``) in mmengine's runner.

The config writes the multigrid settings once, to this hook; the param scheduler ``MultigridLR`` takes none and
the hook binds it to the same settings (``multigrid_plugin.mmagic.scheduler`` says why it is this way round)::

    custom_hooks = [dict(type='MultigridHook', begin=0, **multigrid)]
    param_scheduler = dict(type='MultigridLR', by_epoch=False)

In ``before_run`` (after ``ConfigCheckHook``'s config check) the settings are resolved once, from the section,
the train pipeline's sizes, ``train_cfg.max_iters`` and ``begin``, checked against the data, the model and the
param schedulers, bound to ``MultigridLR``, logged and plotted. What of mmengine it touches, and why: in
``before_train`` it replaces the ``IterBasedTrainLoop``'s ``dataloader`` and ``dataloader_iterator`` (both public
attributes; the new iterator is of the loop's own iterator class) with a loader whose batch sampler gives each
batch the shape of its iteration. ``IterBasedTrainLoop.run`` calls ``before_train`` before it advances the iterator
by ``runner.iter`` batches on resume, so the sampler counts from 0 and a resumed run reads the same stages as an
uninterrupted one.
"""
from __future__ import annotations

import os.path as osp
from functools import partial
from typing import Any

from mmagic.datasets.transforms import GenerateSegmentIndices
from mmagic.registry import HOOKS
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner

from effsr_core.data.dataset_checks import check_clip_frames, check_patch_size, clip_shapes
from effsr_core.distributed import is_main_process
from effsr_core.mmagic.check_hook import ConfigCheckHook
from effsr_core.options import OptionError
from multigrid_plugin.lr_schedule import MultigridLR
from multigrid_plugin.mmagic.data import (fresh_sampler, frames_dataset_baseline, frames_read, mirrored,
                                          multigrid_loader, pipeline_transform, reshape_frames_dataset)
from multigrid_plugin.mmagic.scheduler import MultigridParamScheduler
from multigrid_plugin.options import MMAGIC_HOOK, MULTIGRID, MultigridSettings, resolve
from multigrid_plugin.plot import PLOT_FILE, plot_schedule

NAME = 'MultigridHook'
#: Message-hub keys (LoggerHook and the visualisation backends show them).
SCALARS = ('multigrid_stage', 'multigrid_patch', 'multigrid_frames')
#: Where MMagic keeps what the schedule needs, for messages.
OUTSIDE = {'total_iter': 'train_cfg.max_iters'}


def multigrid_schedulers(param_schedulers: Any) -> tuple[list[MultigridParamScheduler], list[Any]]:
    """The ``MultigridLR`` param schedulers among the runner's (a list, or a dict of lists for several
    optimizers) and the other schedulers of the learning rate."""
    if isinstance(param_schedulers, dict):
        param_schedulers = [s for group in param_schedulers.values() for s in group]
    found, others = [], []
    for scheduler in param_schedulers or []:
        if isinstance(scheduler, MultigridParamScheduler):
            found.append(scheduler)
        elif getattr(scheduler, 'param_name', 'lr') == 'lr':
            others.append(scheduler)
    return found, others


def find_multigrid_lr(param_schedulers: Any) -> MultigridLR | None:
    """The bound torch ``MultigridLR`` among the runner's param schedulers, if any."""
    found, _ = multigrid_schedulers(param_schedulers)
    return next((scheduler.scheduler for scheduler in found if scheduler.bound), None)


@HOOKS.register_module()
class MultigridHook(ConfigCheckHook):
    """Trains an MMagic video SR model with the multigrid schedule: each batch has its stage's LR patch size and
    clip length, the LR follows Eq. 1 (``MultigridLR``, bound here), and the stage is logged and written to the
    message hub.

    Args:
        begin: iterations trained as configured before the schedule starts (``MMAGIC_HOOK``).
        **multigrid: the ``multigrid`` section (``multigrid_plugin.options.MULTIGRID``), written only here. Null
            cycles derive from the train pipeline's ``PairedRandomCrop`` GT size over the scale and the dataset's
            ``num_input_frames``.
    """

    # After SSLPruningHook (ABOVE_NORMAL), which rebuilds the param schedulers at pruning (before_train_iter) and
    # on loading a pruned checkpoint: this hook then binds the rebuilt MultigridLR before it is used.
    priority = 'NORMAL'

    def __init__(self, begin: int = MMAGIC_HOOK['begin'].default, **multigrid: Any):
        self.begin = MMAGIC_HOOK.check({'begin': begin}, NAME)['begin']
        self.values = MULTIGRID.check(multigrid, prefix=NAME)
        self.settings: MultigridSettings | None = None
        self._scale: int | None = None
        self._stage = None

    # ------------------------------------------------------------------------------------ run start
    def before_run(self, runner: Runner) -> None:
        """Resolve the settings, check them against the data, model and param schedulers, bind ``MultigridLR``,
        log and draw the schedule. Nothing to do when the runner tests or validates."""
        super().before_run(runner)
        if not isinstance(runner.optim_wrapper, OptimWrapper):
            return  # not training: runner.train() builds the optimizer wrapper before before_run
        loop = runner.train_loop
        if not hasattr(loop, 'dataloader_iterator'):
            raise OptionError(f'train_cfg.type: {NAME} needs an iteration-based loop (IterBasedTrainLoop), got '
                              f'{type(loop).__name__}.')
        dataset = loop.dataloader.dataset
        self._scale, patch, frames = frames_dataset_baseline(dataset)
        self.settings = resolve(self.values, runner.max_iters, NAME, baseline_patch_size=patch,
                                baseline_frames=frames, offset=self.begin, outside=OUTSIDE)
        self._check_data(dataset)
        self._check_model(runner)
        self._check_lr_schedulers(runner)
        self._bind(runner)
        self._log_schedule(runner)

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """Bind a ``MultigridLR`` rebuilt on loading (before a resume loads its state)."""
        self._bind(runner)

    def before_train(self, runner: Runner) -> None:
        """Rebuild the train loader around the schedule."""
        loop = runner.train_loop
        sampler = fresh_sampler(loop.dataloader, (runner.cfg.get('train_dataloader') or {}).get('sampler'))
        loader = multigrid_loader(loop.dataloader, sampler, self.settings.training,
                                  partial(reshape_frames_dataset, scale=self._scale))
        loop.dataloader = loader  # runner.train_dataloader reads it
        loop.dataloader_iterator = type(loop.dataloader_iterator)(loader)  # the old one's workers stop with it

    def _check_data(self, dataset: Any) -> None:
        """Every stage's clip fits the frames and clips of the annotation file."""
        ann_file = getattr(dataset, 'ann_file', None)
        if not ann_file or not osp.isfile(ann_file):
            return
        stages = self.settings.schedule.stages
        clip_frames, shapes = clip_shapes(ann_file)
        patch = max(stage.patch_size for stage in stages)
        check_patch_size(f'{NAME}.spatial_sizes ({patch} x scale {self._scale})', patch * self._scale, shapes)
        indices = pipeline_transform(dataset, GenerateSegmentIndices)
        interval = max(getattr(indices, 'interval_list', None) or [1])
        if mirrored(dataset) and any(stage.frames % 2 for stage in stages):
            raise OptionError(f'{NAME}.temporal_sizes: the pipeline mirrors every clip (MirrorSequence), so every '
                              f'clip length must be even; got {sorted({s.frames for s in stages})}.')
        longest = max(stage.frames for stage in stages)
        check_clip_frames(f'{NAME}.temporal_sizes', frames_read(dataset, longest), interval, clip_frames)

    def _check_model(self, runner: Runner) -> None:
        """A sliding-window generator (``num_frames``, e.g. EDVR) takes one clip length: spatial cycle only."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        num_frames = getattr(getattr(model, 'generator', None), 'num_frames', None)
        num_frames = num_frames or (runner.cfg.get('model') or {}).get('generator', {}).get('num_frames')
        if num_frames is None:
            return
        schedule = self.settings.schedule
        if schedule.mode != 'spatial':
            raise OptionError(f'{NAME}.mode: {schedule.mode!r} changes the clip length, but the generator '
                              f'reads a fixed {num_frames} frames (model.generator.num_frames); use mode=\'spatial\'.')
        if schedule.stages[-1].frames != num_frames:
            raise OptionError(f'{NAME}.temporal_sizes: clips of {schedule.stages[-1].frames} frames, but the '
                              f'generator reads {num_frames} (model.generator.num_frames).')

    @staticmethod
    def _check_lr_schedulers(runner: Runner) -> None:
        """The LR is set by ``MultigridLR`` alone."""
        found, others = multigrid_schedulers(runner.param_schedulers)
        if not found:
            raise OptionError(f'param_scheduler: {NAME} needs dict(type=\'MultigridLR\', by_epoch=False), the LR of '
                              'its stages (it takes no multigrid keys: this hook\'s drive it).')
        if others:
            raise OptionError(f'param_scheduler: {type(others[0]).__name__} also sets the LR; MultigridLR has its '
                              'own warmup (warmup_iter) and must be the only LR scheduler.')

    def _bind(self, runner: Runner) -> None:
        """Bind every ``MultigridLR`` of the runner not bound yet (the runner's first, or one rebuilt since)."""
        if self.settings is None:
            return  # not training (before_run resolved nothing)
        found, _ = multigrid_schedulers(runner.param_schedulers)
        for scheduler in found:
            if not scheduler.bound:
                scheduler.bind(self.settings)

    def _log_schedule(self, runner: Runner) -> None:
        schedule = self.settings.schedule
        stages = ', '.join(f'{s.patch_size}x{s.frames} for {s.length}' for s in schedule.stages)
        runner.logger.info(f'{NAME}: {schedule.num_stages} stages (LR patch x frames for iterations): {stages}'
                           f'; starts after iteration {self.begin}.')
        if not is_main_process():
            return
        scheduler = find_multigrid_lr(runner.param_schedulers)
        plot_schedule(self.settings, osp.join(runner.work_dir, PLOT_FILE), base_lr=scheduler.base_lrs[0])

    # ------------------------------------------------------------------------------------ iterations
    def before_train_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None) -> None:
        """Bind a ``MultigridLR`` rebuilt this iteration (SSL's pruning), log a stage change, publish the stage,
        and refuse a MultigridLR stepping out of line with the data."""
        self._bind(runner)
        step = self.settings.training.step(runner.iter + 1)  # 1-based iteration of the schedule
        if step < 1:
            return
        schedule = self.settings.schedule
        stage = schedule.stage_at(step)
        for key, value in zip(SCALARS, (stage.index, stage.patch_size, stage.frames)):
            runner.message_hub.update_scalar(f'train/{key}', value)
        if stage.index != self._stage:
            self._stage = stage.index
            runner.logger.info(f'{NAME}: iteration {runner.iter + 1} trains stage {stage.index + 1}/'
                               f'{schedule.num_stages}: LR patch {stage.patch_size}, {stage.frames} frames.')
        scheduler = find_multigrid_lr(runner.param_schedulers)
        if scheduler is not None and scheduler.last_epoch != step - 1:
            raise RuntimeError(f'{NAME}.begin: iteration {runner.iter + 1} is step {step} of the multigrid schedule '
                               f'but MultigridLR is at step {scheduler.last_epoch + 1}; begin must be the iteration '
                               'after which the param scheduler starts.')
