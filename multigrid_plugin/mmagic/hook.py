"""MMagic hook ``MultigridHook``: multigrid training (``multigrid_plugin.schedule``) in mmengine's runner.

What of mmengine it touches, and why: in ``before_train`` it replaces the ``IterBasedTrainLoop``'s ``dataloader``
and ``dataloader_iterator`` (both public attributes; the new iterator is of the loop's own iterator class) with a
loader whose batch sampler gives each batch the shape of its iteration. ``IterBasedTrainLoop.run`` calls
``before_train`` before it advances the iterator by ``runner.iter`` batches on resume, so the sampler counts from
0 and a resumed run reads the same stages as an uninterrupted one. The LR is the param scheduler ``MultigridLR``
built from the same ``multigrid`` values; the hook refuses a config where the two disagree.
"""
from __future__ import annotations

import os.path as osp
from functools import partial
from typing import Any

from mmagic.datasets.transforms import GenerateSegmentIndices
from mmagic.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from effsr_core.data.dataset_checks import check_clip_frames, check_patch_size, clip_shapes
from effsr_core.distributed import is_main_process
from effsr_core.options import OptionError
from multigrid_plugin.lr_schedule import MultigridLR
from multigrid_plugin.mmagic.data import (fresh_sampler, frames_dataset_baseline, frames_read, mirrored,
                                          multigrid_loader, pipeline_transform, reshape_frames_dataset)
from multigrid_plugin.options import MMAGIC_HOOK, MULTIGRID, build_schedule
from multigrid_plugin.plot import plot_schedule
from multigrid_plugin.schedule import MultigridSchedule

NAME = 'MultigridHook'
PLOT_FILE = 'multigrid_schedule.png'
#: Message-hub keys (LoggerHook and the visualisation backends show them).
SCALARS = ('multigrid_stage', 'multigrid_patch', 'multigrid_frames')


class DelayedSchedule:
    """The schedule as ``MultigridBatchSampler`` reads it, ``begin`` iterations late: until then every batch has
    the baseline's (configured) shape."""

    def __init__(self, schedule: MultigridSchedule, begin: int, baseline: tuple[int, int]):
        self.schedule, self.begin, self.baseline = schedule, begin, baseline

    def __call__(self, iteration: int) -> tuple[int, int, int]:
        if iteration <= self.begin:
            return (-1, *self.baseline)
        return self.schedule(iteration - self.begin)


def find_multigrid_lr(param_schedulers: Any) -> tuple[MultigridLR | None, list[Any]]:
    """The ``MultigridLR`` among the runner's param schedulers (list, or dict of lists for several optimizers)
    and the other schedulers of the learning rate."""
    if isinstance(param_schedulers, dict):
        param_schedulers = [s for group in param_schedulers.values() for s in group]
    found, others = None, []
    for scheduler in param_schedulers or []:
        wrapped = getattr(scheduler, 'scheduler', None)
        if isinstance(wrapped, MultigridLR):
            found = wrapped
        elif getattr(scheduler, 'param_name', 'lr') == 'lr':
            others.append(scheduler)
    return found, others


@HOOKS.register_module()
class MultigridHook(Hook):
    """Trains an MMagic video SR model with the multigrid schedule: each batch has its stage's LR patch size and
    clip length, and the stage is logged and written to the message hub.

    Args:
        begin: iterations trained as configured before the schedule starts (``MMAGIC_HOOK``).
        **multigrid: the ``multigrid`` section (``multigrid_plugin.options.MULTIGRID``); the config passes the same
            dict to ``MultigridLR``. Null cycles derive from the train pipeline's ``PairedRandomCrop`` GT size over
            the scale and the dataset's ``num_input_frames``.
    """

    priority = 'HIGH'  # before SSLPruningHook (ABOVE_NORMAL) sets the param schedulers aside in before_train

    def __init__(self, begin: int = MMAGIC_HOOK['begin'].default, **multigrid: Any):
        self.begin = MMAGIC_HOOK.check({'begin': begin}, NAME)['begin']
        self.values = MULTIGRID.check(multigrid, prefix=NAME)
        self.schedule: MultigridSchedule | None = None
        self._stage = None

    # ------------------------------------------------------------------------------------ run start
    def before_train(self, runner: Runner) -> None:
        """Check the config against the data, model and LR scheduler, draw the schedule, rebuild the loader."""
        loop = runner.train_loop
        if not hasattr(loop, 'dataloader_iterator'):
            raise OptionError(f'train_cfg.type: {NAME} needs an iteration-based loop (IterBasedTrainLoop), got '
                              f'{type(loop).__name__}.')
        dataset = loop.dataloader.dataset
        scale, patch, frames = frames_dataset_baseline(dataset)
        self.schedule = self._build_schedule(runner, patch, frames)
        self._check_data(dataset, scale)
        self._check_model(runner)
        lr_scheduler = self._check_lr_scheduler(runner)
        self._log_schedule(runner, lr_scheduler)
        sampler = fresh_sampler(loop.dataloader, (runner.cfg.get('train_dataloader') or {}).get('sampler'))
        loader = multigrid_loader(loop.dataloader, sampler, DelayedSchedule(self.schedule, self.begin, (patch, frames)),
                                  partial(reshape_frames_dataset, scale=scale))
        loop.dataloader = loader  # runner.train_dataloader reads it
        loop.dataloader_iterator = type(loop.dataloader_iterator)(loader)  # the old one's workers stop with it

    def _build_schedule(self, runner: Runner, patch: int, frames: int) -> MultigridSchedule:
        if self.begin >= runner.max_iters:
            raise OptionError(f'{NAME}.begin: {self.begin} leaves no iteration of train_cfg.max_iters '
                              f'({runner.max_iters}) for the schedule.')
        return build_schedule(self.values, runner.max_iters - self.begin, NAME, baseline_patch_size=patch,
                              baseline_frames=frames, outside={'total_iter': 'train_cfg.max_iters'})

    def _check_data(self, dataset: Any, scale: int) -> None:
        """Every stage's clip fits the frames and clips of the annotation file."""
        ann_file = getattr(dataset, 'ann_file', None)
        if not ann_file or not osp.isfile(ann_file):
            return
        clip_frames, shapes = clip_shapes(ann_file)
        patch = max(stage.patch_size for stage in self.schedule.stages)
        check_patch_size(f'{NAME}.spatial_sizes ({patch} x scale {scale})', patch * scale, shapes)
        indices = pipeline_transform(dataset, GenerateSegmentIndices)
        interval = max(getattr(indices, 'interval_list', None) or [1])
        if mirrored(dataset) and any(stage.frames % 2 for stage in self.schedule.stages):
            raise OptionError(f'{NAME}.temporal_sizes: the pipeline mirrors every clip (MirrorSequence), so every '
                              f'clip length must be even; got {sorted({s.frames for s in self.schedule.stages})}.')
        longest = max(stage.frames for stage in self.schedule.stages)
        check_clip_frames(f'{NAME}.temporal_sizes', frames_read(dataset, longest), interval, clip_frames)

    def _check_model(self, runner: Runner) -> None:
        """A sliding-window generator (``num_frames``, e.g. EDVR) takes one clip length: spatial cycle only."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        num_frames = getattr(getattr(model, 'generator', None), 'num_frames', None)
        num_frames = num_frames or (runner.cfg.get('model') or {}).get('generator', {}).get('num_frames')
        if num_frames is None:
            return
        if self.values['mode'] != 'spatial':
            raise OptionError(f'{NAME}.mode: {self.values["mode"]!r} changes the clip length, but the generator '
                              f'reads a fixed {num_frames} frames (model.generator.num_frames); use mode=\'spatial\'.')
        if self.schedule.stages[-1].frames != num_frames:
            raise OptionError(f'{NAME}.temporal_sizes: clips of {self.schedule.stages[-1].frames} frames, but the '
                              f'generator reads {num_frames} (model.generator.num_frames).')

    def _check_lr_scheduler(self, runner: Runner) -> MultigridLR:
        """The param scheduler is one ``MultigridLR`` with this hook's stages and LR options."""
        scheduler, others = find_multigrid_lr(runner.param_schedulers)
        if scheduler is None:
            raise OptionError(f'param_scheduler: {NAME} needs dict(type=\'MultigridLR\', by_epoch=False, '
                              f'total_iter=<train_cfg.max_iters - begin>, **multigrid), the LR of its stages.')
        if others:
            raise OptionError(f'param_scheduler: {type(others[0]).__name__} also sets the LR; MultigridLR has its '
                              'own warmup (warmup_iter) and must be the only LR scheduler.')
        if scheduler.schedule.stages != self.schedule.stages:
            raise OptionError(f'param_scheduler: MultigridLR\'s stages {_describe(scheduler.schedule)} differ from '
                              f'{NAME}\'s {_describe(self.schedule)}; pass both the same `multigrid` dict and '
                              f'total_iter = train_cfg.max_iters - begin ({self.schedule.total_iter}).')
        for key in ('warmup_iter', 'eta_min', 'form'):
            if getattr(scheduler, key) != self.values[key]:
                raise OptionError(f'param_scheduler.{key}: {getattr(scheduler, key)!r} differs from {NAME}.{key} '
                                  f'({self.values[key]!r}); pass both the same `multigrid` dict.')
        return scheduler

    def _log_schedule(self, runner: Runner, scheduler: MultigridLR) -> None:
        stages = ', '.join(f'{s.patch_size}x{s.frames} for {s.length}' for s in self.schedule.stages)
        runner.logger.info(f'{NAME}: {self.schedule.num_stages} stages (LR patch x frames for iterations): {stages}'
                           f'; starts after iteration {self.begin}.')
        if not is_main_process():
            return
        plot_schedule(self.schedule, osp.join(runner.work_dir, PLOT_FILE), base_lr=scheduler.base_lrs[0],
                      eta_min=scheduler.eta_min, warmup_iter=scheduler.warmup_iter, form=scheduler.form,
                      offset=self.begin, spatial_lr_factors=scheduler.spatial_lr_factors)

    # ------------------------------------------------------------------------------------ iterations
    def before_train_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None) -> None:
        """Log a stage change, publish the stage, and refuse a MultigridLR stepping out of line with the data."""
        step = runner.iter + 1 - self.begin  # 1-based iteration of the schedule
        if step < 1:
            return
        stage = self.schedule.stage_at(step)
        for key, value in zip(SCALARS, (stage.index, stage.patch_size, stage.frames)):
            runner.message_hub.update_scalar(f'train/{key}', value)
        if stage.index != self._stage:
            self._stage = stage.index
            runner.logger.info(f'{NAME}: iteration {runner.iter + 1} trains stage {stage.index + 1}/'
                               f'{self.schedule.num_stages}: LR patch {stage.patch_size}, {stage.frames} frames.')
        scheduler, _ = find_multigrid_lr(runner.param_schedulers)
        if scheduler is not None and scheduler.last_epoch != step - 1:
            raise RuntimeError(f'{NAME}.begin: iteration {runner.iter + 1} is step {step} of the multigrid schedule '
                               f'but MultigridLR is at step {scheduler.last_epoch + 1}; begin must be the iteration '
                               'after which the param scheduler starts.')


def _describe(schedule: MultigridSchedule) -> str:
    return str([(s.patch_size, s.frames, s.length) for s in schedule.stages])
