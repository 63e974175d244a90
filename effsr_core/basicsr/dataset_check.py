"""Check a BasicSR dataset section against the data on disk, before anything is loaded: frames per clip, patch
size against the image size, scale against the LR folder, paths, and the names BasicSR's video test datasets take.
BasicSR itself finds these in a DataLoader worker after training started, or never (a wrong scale trains)."""
from __future__ import annotations

import os
import os.path as osp
from pathlib import Path
from typing import Any, Mapping

from effsr_core.data.meta_info import IMAGE_SUFFIXES, image_shape, read_meta_info
from effsr_core.options import OptionError, unknown_choice

#: BasicSR's REDS datasets draw frames 0-99 of every clip (``reds_dataset.py``: "each clip has 100 frames").
REDS_CLIP_FRAMES = 100
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
    meta = read_meta_info(dataset['meta_info_file']) if dataset.get('meta_info_file') else {}
    if option.split('.')[-1].startswith('train'):
        _check_frames(option, dataset, meta)
        _check_patch_size(option, dataset, meta)
    if extra is not None and dataset.get('clips') is not None and meta:
        missing = sorted(set(map(str, dataset['clips'])) - set(meta))
        if missing:
            raise OptionError(f'{option}.clips: {", ".join(missing)} not in {dataset["meta_info_file"]} '
                              f'({", ".join(sorted(meta))}).')
    if scale and dataset.get('dataroot_gt') and dataset.get('dataroot_lq'):
        _check_scale(option, dataset, scale)


def _check_frames(option: str, dataset: Mapping[str, Any], meta: dict) -> None:
    num_frame = dataset.get('num_frame')
    clip_frames = {name: frames for name, (frames, _) in meta.items() if frames is not None}
    if not isinstance(num_frame, int) or num_frame < 1 or not clip_frames:
        return
    interval = max(dataset.get('interval_list') or [1])
    shortest = min(clip_frames, key=clip_frames.get)
    if dataset['type'].startswith('REDS') and clip_frames[shortest] < REDS_CLIP_FRAMES:
        raise OptionError(f'{option}.meta_info_file: clip {shortest} has {clip_frames[shortest]} frames, but '
                          f'{dataset["type"]} reads frames 0-{REDS_CLIP_FRAMES - 1} of every clip.')
    if num_frame * interval > clip_frames[shortest]:
        raise OptionError(f'{option}.num_frame: {num_frame} frames (x interval {interval}) do not fit in clip '
                          f'{shortest}, which has {clip_frames[shortest]} frames; use at most '
                          f'{clip_frames[shortest] // interval}.')


def _check_patch_size(option: str, dataset: Mapping[str, Any], meta: dict) -> None:
    gt_size = dataset.get('gt_size')
    shapes = {name: shape for name, (_, shape) in meta.items() if shape is not None}
    if not shapes and dataset.get('dataroot_gt'):
        first = _first_image(dataset['dataroot_gt'])
        shapes = {first[0]: first[1]} if first else {}
    if not isinstance(gt_size, int) or not shapes:
        return
    smallest = min(shapes, key=lambda name: min(shapes[name][:2]))
    if gt_size > min(shapes[smallest][:2]):
        raise OptionError(f'{option}.gt_size: {gt_size} is larger than {smallest} '
                          f'({shapes[smallest][0]}x{shapes[smallest][1]}); use at most {min(shapes[smallest][:2])}.')


def _check_scale(option: str, dataset: Mapping[str, Any], scale: int) -> None:
    """The first GT image and its LR counterpart differ by ``scale`` (when the counterpart can be found)."""
    gt = _first_image(dataset['dataroot_gt'])
    if gt is None:
        return
    key, gt_shape = gt
    lq_shape = _image_shape_at(dataset['dataroot_lq'], key, dataset.get('filename_tmpl', '{}'))
    if lq_shape is None:
        return
    if (gt_shape[0], gt_shape[1]) != (lq_shape[0] * scale, lq_shape[1] * scale):
        raise OptionError(f'scale: {scale} does not fit {option}: {key} is {gt_shape[0]}x{gt_shape[1]} in dataroot_gt '
                          f'and {lq_shape[0]}x{lq_shape[1]} in dataroot_lq.')


def _first_image(root: str) -> tuple[str, tuple[int, ...]] | None:
    """``(key, shape)`` of the first image under ``root`` (a folder, or an LMDB with its meta_info.txt)."""
    root = Path(osp.expanduser(root))
    if root.suffix == '.lmdb':
        meta = read_meta_info(root / 'meta_info.txt') if (root / 'meta_info.txt').is_file() else {}
        return next(((key, shape) for key, (_, shape) in sorted(meta.items()) if shape), None)
    folder = root
    while folder.is_dir():
        entries = sorted(os.listdir(folder))
        image = next((name for name in entries if Path(name).suffix.lower() in IMAGE_SUFFIXES), None)
        if image is not None:
            path = folder / image
            return str(path.relative_to(root)), image_shape(path)
        subfolders = [name for name in entries if (folder / name).is_dir()]
        if not subfolders:
            return None
        folder = folder / subfolders[0]
    return None


def _image_shape_at(root: str, key: str, filename_tmpl: str) -> tuple[int, ...] | None:
    """Shape of the image ``key`` (a path relative to a GT root) under the LR ``root``, if it is there."""
    root = Path(osp.expanduser(root))
    if root.suffix == '.lmdb':
        meta = read_meta_info(root / 'meta_info.txt') if (root / 'meta_info.txt').is_file() else {}
        return meta.get(key, (None, None))[1]
    relative = Path(key)
    for candidate in (root / relative, root / relative.parent / (filename_tmpl.format(relative.stem) + relative.suffix)):
        if candidate.is_file():
            return image_shape(candidate)
    return None
