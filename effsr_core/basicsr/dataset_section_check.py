"""Check a BasicSR dataset section against the data on disk, before anything is loaded: frames per clip, patch
size against the image size, scale against the LR folder, paths, and the names BasicSR's video test datasets take.
BasicSR itself finds these in a DataLoader worker after training started, or never (a wrong scale trains)."""
from __future__ import annotations

import os.path as osp
from typing import Any, Mapping

from effsr_core.data.dataset_checks import check_clip_frames, check_patch_size, check_scale, clip_shapes, first_image
from effsr_core.data.meta_info import REDS_CLIP_FRAMES
from effsr_core.options import OptionError, unknown_choice

#: ``name`` values BasicSR's ``VideoTestDataset`` (and its recurrent subclass) accept, compared lower-case.
VIDEO_TEST_NAMES = ('Vid4', 'REDS4', 'REDSOfficial')


def check_dataset(option: str, dataset: Mapping[str, Any], scale: int | None, check_paths: bool) -> None:
    """Refuse a dataset section BasicSR would fail on later, naming the option (``datasets.<phase>.<key>``)."""
    from basicsr.data.video_test_dataset import VideoTestDataset
    from basicsr.utils.registry import DATASET_REGISTRY

    if dataset.get('type') not in DATASET_REGISTRY:
        raise unknown_choice(f'{option}.type', dataset.get('type'), DATASET_REGISTRY.keys())
    dataset_cls = DATASET_REGISTRY.get(dataset['type'])
    scale = dataset.get('scale', scale)
    gt_size = dataset.get('gt_size')
    if gt_size is not None and scale and gt_size % scale != 0:
        raise OptionError(f'{option}.gt_size: {gt_size} is not divisible by scale {scale}; '
                          f'use a multiple of {scale} (e.g. {gt_size - gt_size % scale or scale}).')
    if issubclass(dataset_cls, VideoTestDataset) and str(dataset.get('name')).lower() not in (
            name.lower() for name in VIDEO_TEST_NAMES):
        raise OptionError(f'{option}.name: {dataset.get("name")!r} is refused by {dataset["type"]}, which accepts '
                          f'only {", ".join(VIDEO_TEST_NAMES)} (use the one whose folder layout your data has).')
    extra = getattr(dataset_cls, 'extra_options', None)
    if extra is not None:
        extra.check({key: dataset[key] for key in extra.names if key in dataset}, option)
    if not check_paths:
        return
    for key, value in dataset.items():
        if (key.startswith('dataroot_') or key == 'meta_info_file') and value is not None:
            if not osp.exists(osp.expanduser(value)):
                raise OptionError(f'{option}.{key}: path {value!r} does not exist (for the bundled offline data run '
                                  f'`python -m effsr_core.data.make_offline_data` first).')
    frames, shapes = clip_shapes(dataset['meta_info_file']) if dataset.get('meta_info_file') else ({}, {})
    if option.split('.')[-1].startswith('train'):
        _check_frames(option, dataset, frames)
        if isinstance(gt_size, int):
            first = None if shapes or not dataset.get('dataroot_gt') else first_image(dataset['dataroot_gt'])
            check_patch_size(f'{option}.gt_size', gt_size, shapes or dict([first] if first else []))
    if extra is not None and dataset.get('clips') is not None and frames:
        missing = sorted(set(map(str, dataset['clips'])) - set(frames))
        if missing:
            raise OptionError(f'{option}.clips: {", ".join(missing)} not in {dataset["meta_info_file"]} '
                              f'({", ".join(sorted(frames))}).')
    if scale and dataset.get('dataroot_gt') and dataset.get('dataroot_lq'):
        check_scale('scale', scale, dataset['dataroot_gt'], dataset['dataroot_lq'], option,
                    dataset.get('filename_tmpl', '{}'))


def _check_frames(option: str, dataset: Mapping[str, Any], clip_frames: dict[str, int]) -> None:
    num_frame = dataset.get('num_frame')
    if not isinstance(num_frame, int) or num_frame < 1 or not clip_frames:
        return
    shortest = min(clip_frames, key=clip_frames.get)
    if dataset['type'].startswith('REDS') and clip_frames[shortest] < REDS_CLIP_FRAMES:
        raise OptionError(f'{option}.meta_info_file: clip {shortest} has {clip_frames[shortest]} frames, but '
                          f'{dataset["type"]} reads frames 0-{REDS_CLIP_FRAMES - 1} of every clip.')
    check_clip_frames(f'{option}.num_frame', num_frame, max(dataset.get('interval_list') or [1]), clip_frames)
