"""Checks of dataset options against the data on disk, shared by the BasicSR and MMagic adapters: frames per clip,
patch size against the frame size, scale against the LR folder. Each names the option it refuses."""
from __future__ import annotations

import os
import os.path as osp
from pathlib import Path
from typing import Mapping

from effsr_core.data.meta_info import image_shape, read_meta_info
from effsr_core.images import IMAGE_SUFFIXES
from effsr_core.options import OptionError

Shape = tuple[int, ...]


def check_clip_frames(option: str, num_frame: int, interval: int, clip_frames: Mapping[str, int]) -> None:
    """``num_frame`` frames ``interval`` apart fit in every clip (``clip_frames``: frames per clip)."""
    if not clip_frames:
        return
    shortest = min(clip_frames, key=clip_frames.get)
    if num_frame * interval > clip_frames[shortest]:
        raise OptionError(f'{option}: {num_frame} frames (x interval {interval}) do not fit in clip {shortest}, '
                          f'which has {clip_frames[shortest]} frames; use at most {clip_frames[shortest] // interval}.')


def check_patch_size(option: str, gt_size: int, shapes: Mapping[str, Shape]) -> None:
    """A ``gt_size`` square fits in every image / frame (``shapes``: (h, w, ...) per clip or image)."""
    if not shapes:
        return
    smallest = min(shapes, key=lambda name: min(shapes[name][:2]))
    h, w = shapes[smallest][:2]
    if gt_size > min(h, w):
        raise OptionError(f'{option}: {gt_size} is larger than {smallest} ({h}x{w}); use at most {min(h, w)}.')


def check_scale(option: str, scale: int, gt_root: str, lq_root: str, where: str, filename_tmpl: str = '{}') -> None:
    """The first GT image under ``gt_root`` is ``scale`` times its LR counterpart under ``lq_root`` (checked when
    the counterpart can be found); ``where`` names the dataset in the message."""
    gt = first_image(gt_root)
    lq_shape = image_shape_at(lq_root, gt[0], filename_tmpl) if gt else None
    if lq_shape is None:
        return
    key, gt_shape = gt
    if (gt_shape[0], gt_shape[1]) != (lq_shape[0] * scale, lq_shape[1] * scale):
        raise OptionError(f'{option}: {scale} does not fit {where}: {key} is {gt_shape[0]}x{gt_shape[1]} in the GT '
                          f'folder and {lq_shape[0]}x{lq_shape[1]} in the LR folder.')


def clip_shapes(meta_info_file: str | Path) -> tuple[dict[str, int], dict[str, Shape]]:
    """Frames per clip and frame shape per clip, from a meta_info file (entries without them are left out)."""
    meta = read_meta_info(meta_info_file)
    return ({name: frames for name, (frames, _) in meta.items() if frames is not None},
            {name: shape for name, (_, shape) in meta.items() if shape is not None})


def first_image(root: str | Path) -> tuple[str, Shape] | None:
    """``(key, shape)`` of the first image under ``root`` (a folder tree, or an LMDB with its meta_info.txt)."""
    root = Path(osp.expanduser(root))
    if root.suffix == '.lmdb':
        meta = read_meta_info(root / 'meta_info.txt') if (root / 'meta_info.txt').is_file() else {}
        return next(((key, shape) for key, (_, shape) in sorted(meta.items()) if shape), None)
    folder = root
    while folder.is_dir():
        entries = sorted(os.listdir(folder))
        image = next((name for name in entries if Path(name).suffix.lower() in IMAGE_SUFFIXES), None)
        if image is not None:
            return str((folder / image).relative_to(root)), image_shape(folder / image)
        subfolders = [name for name in entries if (folder / name).is_dir()]
        if not subfolders:
            return None
        folder = folder / subfolders[0]
    return None


def image_shape_at(root: str | Path, key: str, filename_tmpl: str = '{}') -> Shape | None:
    """Shape of the image ``key`` (a path relative to a GT root) under another ``root``, if it is there; the file
    name may follow ``filename_tmpl`` (BasicSR's paired datasets, e.g. ``{}x4``)."""
    root = Path(osp.expanduser(root))
    if root.suffix == '.lmdb':
        meta = read_meta_info(root / 'meta_info.txt') if (root / 'meta_info.txt').is_file() else {}
        return meta.get(key, (None, None))[1]
    relative = Path(key)
    for candidate in (root / relative, root / relative.parent / (filename_tmpl.format(relative.stem) + relative.suffix)):
        if candidate.is_file():
            return image_shape(candidate)
    return None
