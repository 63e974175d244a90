"""The MMagic side of the multigrid data path: how a ``BasicFramesDataset`` reads one sample with a given LR patch
size and clip length, and the train DataLoader rebuilt around ``MultigridBatchSampler`` / ``MultigridDataset``.

Both work on the built objects (not on the config), so they follow whatever the config's bases set.
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from functools import partial
from typing import Any, Callable, Iterator

from mmagic.datasets.transforms import GenerateSegmentIndices, MirrorSequence, PairedRandomCrop, SetValues
from mmagic.registry import DATA_SAMPLERS
from mmengine.dataset import BaseDataset
from torch.utils.data import DataLoader, Sampler

from effsr_core.data.loader_rebuild import rebuild_loader
from effsr_core.options import OptionError
from multigrid_plugin.sampling import MultigridBatchSampler, MultigridDataset, Reshape

DATASET = 'train_dataloader.dataset'


def pipeline_transform(dataset: BaseDataset, kind: type) -> Any:
    """The first transform of type ``kind`` in the dataset's pipeline (an mmengine ``Compose``), or None."""
    return next((t for t in getattr(dataset.pipeline, 'transforms', ()) if isinstance(t, kind)), None)


def frames_dataset_baseline(dataset: Any) -> tuple[int, int, int]:
    """``(scale, LR patch size, frames)`` a frames dataset reads as configured: the ``PairedRandomCrop`` GT patch
    over the scale of its ``SetValues`` transform, and ``num_input_frames``; OptionError naming what is missing."""
    if not isinstance(dataset, BaseDataset) or not hasattr(dataset, 'num_input_frames'):
        raise OptionError(f'{DATASET}.type: multigrid training reads frame clips (BasicFramesDataset or a subclass), '
                          f'got {type(dataset).__name__}.')
    crop = pipeline_transform(dataset, PairedRandomCrop)
    if crop is None:
        raise OptionError(f'{DATASET}.pipeline: needs a PairedRandomCrop transform, whose patch size the spatial '
                          'cycle changes.')
    values = pipeline_transform(dataset, SetValues)
    scale = (getattr(values, 'dictionary', None) or {}).get('scale')
    if not isinstance(scale, int) or scale < 1:
        raise OptionError(f'{DATASET}.pipeline: needs a SetValues transform with dictionary=dict(scale=<int>) before '
                          'PairedRandomCrop (the LR patch size is the GT patch size over the scale).')
    frames = dataset.num_input_frames
    if not isinstance(frames, int) or frames < 1:
        raise OptionError(f'{DATASET}.num_input_frames: {frames!r} must be a positive int (the baseline clip length).')
    return scale, crop.gt_patch_size // scale, frames * (2 if mirrored(dataset) else 1)


def mirrored(dataset: BaseDataset) -> bool:
    """Whether the pipeline appends each clip reversed (``MirrorSequence``, MMagic's Vimeo-90K configs): the trained
    clip then has twice the frames read."""
    return pipeline_transform(dataset, MirrorSequence) is not None


def frames_read(dataset: BaseDataset, frames: int) -> int:
    """Frames to read for a trained clip of ``frames`` frames (half of them when the pipeline mirrors the clip)."""
    return frames // 2 if mirrored(dataset) else frames


@contextmanager
def reshape_frames_dataset(dataset: BaseDataset, patch_size: int, frames: int, *, scale: int) -> Iterator[None]:
    """During the context, ``dataset`` trains on clips of ``frames`` frames cropped to ``patch_size`` LR pixels.

    Process-local and restored on exit: the ``PairedRandomCrop`` GT size becomes ``patch_size * scale`` and the
    pipeline (a public attribute ``prepare_data`` calls) is wrapped to put the clip length into each data info,
    where ``GenerateSegmentIndices`` reads it (BasicFramesDataset stores it there at load time), or to keep the
    central frames of a listed clip; a mirrored clip (``MirrorSequence``) reads half the frames.
    """
    crop = pipeline_transform(dataset, PairedRandomCrop)
    pipeline, gt_patch_size = dataset.pipeline, crop.gt_patch_size
    crop.gt_patch_size = patch_size * scale
    listed = pipeline_transform(dataset, GenerateSegmentIndices) is None  # frames from load_frames_list paths
    dataset.pipeline = partial(_with_frames, pipeline, frames_read(dataset, frames), listed)
    try:
        yield
    finally:
        dataset.pipeline, crop.gt_patch_size = pipeline, gt_patch_size


def _with_frames(pipeline: Callable[[dict], Any], frames: int, listed: bool, data_info: dict) -> Any:
    """Run ``pipeline`` on a clip of ``frames`` frames: ``num_input_frames`` for ``GenerateSegmentIndices``, or the
    central ``frames`` of the listed frame paths (``load_frames_list``, e.g. a Vimeo-90K septuplet)."""
    if not listed:
        return pipeline({**data_info, 'num_input_frames': frames})
    first = (data_info['num_input_frames'] - frames) // 2
    central = {f'{key}_path': data_info[f'{key}_path'][first:first + frames] for key in ('img', 'gt')
               if isinstance(data_info.get(f'{key}_path'), list)}
    return pipeline({**data_info, **central, 'num_input_frames': frames, 'num_output_frames': frames})


def fresh_sampler(loader: DataLoader, sampler_cfg: Any) -> Sampler:
    """A new sampler like the loader's, built from its config with the loader's sampler's seed: mmengine's
    ``InfiniteSampler`` keeps ONE index generator for its lifetime, which the loop's first iterator has already
    advanced (prefetching) and closes when it is dropped."""
    if not isinstance(sampler_cfg, dict):
        return loader.sampler  # a sampler object in the config: nothing to rebuild it from
    seed = getattr(loader.sampler, 'seed', None)
    return DATA_SAMPLERS.build(copy.deepcopy(sampler_cfg), default_args=dict(dataset=loader.dataset, seed=seed))


def multigrid_loader(loader: DataLoader, sampler: Sampler, schedule: Callable[[int], tuple[int, int, int]],
                     reshape: Reshape) -> DataLoader:
    """``loader`` rebuilt to read each batch with the shape of its iteration: its dataset wrapped in
    ``MultigridDataset`` and ``sampler`` (a fresh copy of its infinite / distributed sampler) batched by
    ``MultigridBatchSampler`` with ``schedule`` (a training iteration's stage and shape); every other setting is
    kept (``effsr_core.data.loader_rebuild``). The batch count starts at 0."""
    if loader.batch_size is None:
        raise OptionError('train_dataloader.batch_sampler: MultigridHook batches the sampler itself; set batch_size '
                          'and leave batch_sampler unset.')
    batches = MultigridBatchSampler(sampler, loader.batch_size, schedule, drop_last=loader.drop_last)
    return rebuild_loader(loader, MultigridDataset(loader.dataset, reshape), batches)
