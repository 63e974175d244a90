"""How each BasicSR training dataset reads its patch size and clip length, so a sample can be read at a stage's
shape (``reshape``, used by ``MultigridDataset`` in whichever process reads the sample) and the options can be
checked against the data before anything is loaded.

What BasicSR 1.4.2 reads in ``__getitem__`` (besides ``opt['gt_size']``, the GT patch, in all of them):

* ``REDSRecurrentDataset``: ``self.num_frame`` consecutive frames out of frames 0-99 of a clip;
* ``Vimeo90KRecurrentDataset`` (disk and LMDB): all 7 frames of a septuplet (it splits what it read at index 7, so
  it cannot read fewer), doubled by ``flip_sequence`` (7 -> 14); a clip of T frames keeps the central T (or T/2
  before the flip) of what was read;
* ``REDSDataset`` / ``Vimeo90KDataset`` (EDVR, sliding window): ``num_frame`` fixed by the architecture, so only
  the patch size may change (multigrid ``mode: spatial``).
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import partial
from typing import Any, Callable, Iterator, Mapping, NamedTuple

import torch

from effsr_core.data.dataset_checks import check_clip_frames
from effsr_core.data.meta_info import REDS_CLIP_FRAMES
from effsr_core.options import OptionError

VIMEO_SEPTUPLET = 7


class FrameControl(NamedTuple):
    """A dataset's clip length: ``configured(dataset_opt)`` frames per sample as written in the options;
    ``attributes(dataset_opt, frames)`` the attributes that make it read ``frames`` (None: fixed by the model);
    ``limit(dataset_opt)`` the most frames a sample can have (None: the meta_info file says), ``multiple`` the
    granularity of a clip length, and ``select(dataset_opt, frames, sample)`` (if any) the ``frames`` of a sample
    read whole."""
    configured: Callable[[Mapping[str, Any]], int]
    attributes: Callable[[Mapping[str, Any], int], dict[str, Any]] | None
    limit: Callable[[Mapping[str, Any]], int | None]
    multiple: Callable[[Mapping[str, Any]], int]
    select: Callable[[Mapping[str, Any], int, dict], dict] | None = None


def _vimeo_frames(opt: Mapping[str, Any]) -> int:
    return VIMEO_SEPTUPLET * (2 if opt.get('flip_sequence') else 1)


def _vimeo_central(opt: Mapping[str, Any], frames: int, sample: dict) -> dict:
    """The central ``frames`` of a septuplet sample (half of them, then mirrored, with ``flip_sequence``)."""
    count = frames // 2 if opt.get('flip_sequence') else frames
    first = (VIMEO_SEPTUPLET - count) // 2
    selected = {}
    for key in ('lq', 'gt'):
        central = sample[key][first:first + count]  # the read order: the first 7 frames, before the flipped copy
        selected[key] = torch.cat([central, central.flip(0)], dim=0) if opt.get('flip_sequence') else central
    return {**sample, **selected}


def _num_frame(opt: Mapping[str, Any]) -> int:
    return opt['num_frame']


FRAME_CONTROLS: dict[str, FrameControl] = {
    'REDSRecurrentDataset': FrameControl(_num_frame, lambda opt, frames: {'num_frame': frames},
                                         lambda opt: None, lambda opt: 1),
    'Vimeo90KRecurrentDataset': FrameControl(_vimeo_frames, lambda opt, frames: {}, _vimeo_frames,
                                             lambda opt: 2 if opt.get('flip_sequence') else 1, _vimeo_central),
    'REDSDataset': FrameControl(_num_frame, None, _num_frame, lambda opt: 1),
    'Vimeo90KDataset': FrameControl(_num_frame, None, _num_frame, lambda opt: 1),
}


def frame_control(dataset_cls: type) -> FrameControl | None:
    """The control of the nearest class in ``dataset_cls``' MRO that has one (subclasses read alike)."""
    return next((FRAME_CONTROLS[klass.__name__] for klass in dataset_cls.__mro__ if klass.__name__ in FRAME_CONTROLS),
                None)


@contextmanager
def reshape(dataset: Any, patch_size: int, frames: int) -> Iterator[Callable[[dict], dict] | None]:
    """While open, ``dataset`` reads GT patches of ``patch_size`` x scale and clips of ``frames`` frames; yields the
    function that keeps ``frames`` of a sample read whole (None where the dataset reads just those)."""
    control = frame_control(type(dataset))
    opt = dataset.opt
    if control.attributes is None:
        if frames != control.configured(opt):
            raise ValueError(f'{type(dataset).__name__} reads {control.configured(opt)} frames (fixed by the model), '
                             f'not {frames}: multigrid mode must be spatial.')
        attributes = {}
    else:
        attributes = control.attributes(opt, frames)
    saved_size, saved = opt['gt_size'], {name: getattr(dataset, name) for name in attributes}
    opt['gt_size'] = patch_size * opt['scale']
    for name, value in attributes.items():
        setattr(dataset, name, value)
    try:
        yield None if control.select is None else partial(control.select, opt, frames)
    finally:
        opt['gt_size'] = saved_size
        for name, value in saved.items():
            setattr(dataset, name, value)


def check_frames(option: str, frames: int, control: FrameControl, dataset_opt: Mapping[str, Any],
                 clip_frames: Mapping[str, int]) -> None:
    """A clip length the dataset can read: a multiple of its granularity, within its limit and every clip of the
    meta_info file (``clip_frames``, empty when not read)."""
    multiple, limit = control.multiple(dataset_opt), control.limit(dataset_opt)
    if frames % multiple:
        raise OptionError(f'{option}: {frames} frames; {dataset_opt["type"]} with flip_sequence reads clips doubled '
                          f'by their reverse, so every size must be a multiple of {multiple}.')
    if limit is not None and frames > limit:
        raise OptionError(f'{option}: {frames} frames are more than {dataset_opt["type"]} reads from one sample '
                          f'({limit}); use at most {limit}.')
    if limit is None and clip_frames:
        readable = {clip: min(count, REDS_CLIP_FRAMES) for clip, count in clip_frames.items()}
        check_clip_frames(option, frames, max(dataset_opt.get('interval_list') or [1]), readable)
