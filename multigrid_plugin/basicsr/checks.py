"""The ``multigrid`` section checked against the rest of a BasicSR options file and the data, before anything is
loaded or written (run by ``effsr_core``'s options check through the declared pipeline section): the section is
resolved once (``BasicSRMultigrid``) and its stages are checked against the model, the dataset and the LR."""
from __future__ import annotations

from typing import Any, Mapping

from basicsr.models.video_recurrent_model import VideoRecurrentModel

from effsr_core.data.dataset_checks import check_patch_size, clip_shapes
from effsr_core.options import OptionError
from multigrid_plugin.basicsr.datasets import check_frames
from multigrid_plugin.basicsr.settings import SECTION, BasicSRMultigrid, dataset_frame_control
from multigrid_plugin.lr_schedule import MultigridLR
from multigrid_plugin.options import check_eta_min

#: A recurrent model aligns neighbouring frames (SpyNet flows between consecutive ones): it needs two at least.
MIN_RECURRENT_FRAMES = 2
#: Keys of the section only MultigridLR reads.
LR_KEYS = ('warmup_iter', 'eta_min', 'form')


def check_multigrid_options(opt: dict, model_cls: type, check_paths: bool) -> None:
    """Refuse, naming the option, a multigrid run BasicSR would fail on or silently run differently."""
    dataset = opt['datasets']['train']
    control = dataset_frame_control(dataset)
    run = BasicSRMultigrid.from_options(opt, model_cls)
    schedule = run.schedule
    sliding = control.attributes is None or not issubclass(model_cls, VideoRecurrentModel)
    if sliding and schedule.mode != 'spatial':
        raise OptionError(f'{SECTION}.mode: {schedule.mode!r} changes the clip length, but {model_cls.__name__} '
                          f'with {dataset["type"]} reads a number of frames fixed by the architecture (sliding '
                          'window); use mode: spatial.')
    if sliding and schedule.stages[-1].frames != run.configured[1]:
        raise OptionError(f'{SECTION}.temporal_sizes: the clip length is fixed at {run.configured[1]} frames '
                          f'(datasets.train.num_frame); its last size is {schedule.stages[-1].frames}.')
    frame_sizes = sorted({stage.frames for stage in schedule.stages})
    if issubclass(model_cls, VideoRecurrentModel) and frame_sizes[0] < MIN_RECURRENT_FRAMES:
        raise OptionError(f'{SECTION}.temporal_sizes: {frame_sizes[0]} frame(s); {model_cls.__name__} aligns '
                          f'neighbouring frames and needs at least {MIN_RECURRENT_FRAMES}.')
    clip_frames, shapes = (clip_shapes(dataset['meta_info_file']) if check_paths and dataset.get('meta_info_file')
                           else ({}, {}))
    for frames in frame_sizes:
        check_frames(f'{SECTION}.temporal_sizes', frames, control, dataset, clip_frames)
    for patch in sorted({stage.patch_size for stage in schedule.stages}):
        try:
            check_patch_size(f'{SECTION}.spatial_sizes', patch * run.scale, shapes)
        except OptionError as error:
            raise OptionError(f'{error} (the GT patch of LR patch {patch} at scale {run.scale})') from None
    _check_lr(opt, run)


def _check_lr(opt: Mapping[str, Any], run: BasicSRMultigrid) -> None:
    train = opt.get('train') or {}
    scheduler = dict(train.get('scheduler') or {})
    if scheduler.pop('type', None) != MultigridLR.__name__:
        unread = [key for key in LR_KEYS if key in opt[SECTION]]
        if unread:
            raise OptionError(f'{SECTION}.{unread[0]}: read by train.scheduler.type {MultigridLR.__name__} only; '
                              f'use that scheduler or remove {", ".join(unread)}.')
        return
    if scheduler:
        raise OptionError(f'train.scheduler.{next(iter(scheduler))}: {MultigridLR.__name__} takes its settings from '
                          f'the {SECTION} section (and train.total_iter); keep only type in train.scheduler.')
    warmup = train.get('warmup_iter', -1)
    if warmup is not None and float(warmup) > 0:
        raise OptionError(f'train.warmup_iter: {warmup}; BasicSR\'s warmup would overwrite {MultigridLR.__name__}\'s '
                          f'LRs: set it to -1 and use {SECTION}.warmup_iter.')
    lr = (train.get('optim_g') or {}).get('lr')
    if isinstance(lr, (int, float)):
        check_eta_min(run.settings.eta_min, lr, run.settings.spatial_lr_factors, SECTION, 'train.optim_g.lr')
