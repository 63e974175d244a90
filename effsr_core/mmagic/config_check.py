"""Check the frame datasets of an MMagic config against the data on disk, from ``ConfigCheckHook.before_run``
(``effsr_core.mmagic.check_hook``, the base of the plugins' hooks: mmengine has built the loops, so a missing
annotation file or an unknown metric has already failed with its own error; no weights are loaded and no frame is
read yet). MMagic itself finds these in a DataLoader worker after training started."""
from __future__ import annotations

import os.path as osp
from typing import Any, Mapping

from effsr_core.data.dataset_checks import check_clip_frames, check_patch_size, check_scale, clip_shapes
from effsr_core.options import OptionError

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def check_mmagic_config(cfg: Mapping[str, Any]) -> None:
    """Refuse a config whose frame datasets cannot be read as configured: frames per clip, patch size, scale."""
    for loader in LOADERS:
        dataset = (cfg.get(loader) or {}).get('dataset') or {}
        if dataset.get('ann_file') and dataset.get('data_root') is not None:
            _check_frames_dataset(f'{loader}.dataset', dataset, cfg.get('scale'), training=loader == LOADERS[0])


def _transform(dataset: Mapping[str, Any], name: str) -> tuple[int, Mapping[str, Any]] | tuple[None, None]:
    """(index, config) of the first pipeline transform of type ``name``."""
    for index, transform in enumerate(dataset.get('pipeline') or []):
        if isinstance(transform, Mapping) and transform.get('type') == name:
            return index, transform
    return None, None


def _check_frames_dataset(option: str, dataset: Mapping[str, Any], scale: int | None, training: bool) -> None:
    root = dataset['data_root']
    ann_file = osp.join(root, dataset['ann_file'])
    prefixes = dataset.get('data_prefix') or {}
    folders = {key: osp.join(root, prefix) for key, prefix in prefixes.items() if key in ('img', 'gt')}
    for key, folder in folders.items():
        if not osp.isdir(folder):
            raise OptionError(f'{option}.data_prefix.{key}: folder {folder!r} does not exist (data_root {root!r}).')
    frames, shapes = clip_shapes(ann_file)
    _, indices = _transform(dataset, 'GenerateSegmentIndices')
    if training and isinstance(dataset.get('num_input_frames'), int) and indices is not None:
        check_clip_frames(f'{option}.num_input_frames', dataset['num_input_frames'],
                          max(indices.get('interval_list') or [1]), frames)
    index, crop = _transform(dataset, 'PairedRandomCrop')
    if crop is not None and isinstance(crop.get('gt_patch_size'), int):
        check_patch_size(f'{option}.pipeline[{index}].gt_patch_size', crop['gt_patch_size'], shapes)
    _, values = _transform(dataset, 'SetValues')
    scale = ((values or {}).get('dictionary') or {}).get('scale', scale)
    if isinstance(scale, int) and {'img', 'gt'} <= set(folders):
        check_scale('scale', scale, folders['gt'], folders['img'], option)
