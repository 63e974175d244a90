"""The multigrid data path: the shape of every sample travels with its index, from the batch sampler to the
dataset, so DataLoader workers (persistent or not), prefetching and distributed samplers all see the stage of the
iteration a batch is for, and the dataset object in the main process is never changed.

``MultigridBatchSampler`` wraps any index sampler (a toolbox's distributed / infinite / enlarged sampler) and
yields batches of ``(index, lr_patch_size, frames)``; the n-th batch it yields trains iteration ``start_iter + n``
(1-based), whose stage the schedule gives. Toolbox loops consume every batch in order, so this holds with
prefetching; every rank counts the same batches, so all ranks train the same stage at the same iteration.

``MultigridDataset`` wraps the toolbox's dataset: an item ``(index, patch, frames)`` is read by the wrapped dataset
with its patch size and clip length set for that one read (``reshape``, a context manager the toolbox adapter
provides; it may yield a function that finishes the sample, e.g. keeps the central frames of a clip the dataset
can only read whole), in whichever process reads it; a plain index reads the dataset as configured.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Callable, Iterable, Iterator

from torch.utils.data import Dataset, Sampler

ShapedIndex = tuple[int, int, int]  # (index, LR patch size, frames)
Reshape = Callable[[Any, int, int], AbstractContextManager]


class MultigridBatchSampler(Sampler[list[ShapedIndex]]):
    """Batches of a constant size whose samples all carry the (LR patch size, frames) of the batch's iteration.

    Args:
        sampler: yields dataset indices (its ``set_epoch`` is forwarded).
        batch_size: samples per batch, the same in every stage (as in the paper).
        schedule: ``(stage, LR patch size, frames)`` of a 1-based training iteration: a ``MultigridSchedule``, or
            a run's ``DelayedSchedule`` (``MultigridSettings.training``) when it starts late.
        drop_last: drop an incomplete last batch of an epoch (training loops do).
        start_iter: iterations already trained (a resumed run), so the next batch trains ``start_iter + 1``.
    """

    def __init__(self, sampler: Iterable[int], batch_size: int, schedule: Callable[[int], tuple[int, int, int]],
                 drop_last: bool = True, start_iter: int = 0):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'batch_size: {batch_size!r} must be a positive int.')
        if isinstance(start_iter, bool) or not isinstance(start_iter, int) or start_iter < 0:
            raise ValueError(f'start_iter: {start_iter!r} must be a non-negative int.')
        self.sampler = sampler
        self.batch_size = batch_size
        self.schedule = schedule
        self.drop_last = drop_last
        self.iteration = start_iter  # of the last batch handed out

    def __iter__(self) -> Iterator[list[ShapedIndex]]:
        batch: list[int] = []
        for index in self.sampler:
            batch.append(int(index))
            if len(batch) == self.batch_size:
                yield self._shaped(batch)
                batch = []
        if batch and not self.drop_last:
            yield self._shaped(batch)

    def _shaped(self, batch: list[int]) -> list[ShapedIndex]:
        self.iteration += 1
        _, patch_size, frames = self.schedule(self.iteration)
        return [(index, patch_size, frames) for index in batch]

    def __len__(self) -> int:
        count = len(self.sampler)  # type: ignore[arg-type]
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)


class MultigridDataset(Dataset):
    """Reads ``(index, patch, frames)`` items from ``dataset`` with that LR patch size and clip length.

    Args:
        dataset: the toolbox's training dataset.
        reshape: ``reshape(dataset, patch, frames)`` is a context manager during which the dataset reads samples
            of that shape (a module-level function or ``functools.partial``: workers unpickle it); what it yields,
            if not None, is applied to the sample read.
    """

    def __init__(self, dataset: Dataset, reshape: Reshape):
        self.dataset = dataset
        self.reshape = reshape

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, item: int | ShapedIndex) -> Any:
        if isinstance(item, tuple):
            index, patch_size, frames = item
            with self.reshape(self.dataset, patch_size, frames) as finish:
                sample = self.dataset[index]
            return sample if finish is None else finish(sample)
        return self.dataset[item]

    def __getattr__(self, name: str) -> Any:  # the toolbox reads the wrapped dataset's attributes (opt, metainfo)
        if name in ('dataset', 'reshape'):
            raise AttributeError(name)
        return getattr(self.dataset, name)
