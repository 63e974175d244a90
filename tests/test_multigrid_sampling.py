"""The multigrid data path: every sample of every batch has the shape of its iteration's stage, with workers,
prefetching, distributed samplers and resume."""
from contextlib import contextmanager

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from multigrid_plugin.sampling import MultigridBatchSampler, MultigridDataset
from multigrid_plugin.schedule import MultigridSchedule

SCHEDULE = MultigridSchedule((4, 8), (2, 3), total_iter=12)  # 4 stages of 3 iterations
BATCH = 2


class ClipDataset(torch.utils.data.Dataset):
    """Clips of ``num_frame`` frames of ``patch`` x ``patch`` pixels, filled with their index."""

    def __init__(self, size=10):
        self.size, self.patch, self.num_frame = size, 8, 3

    def __len__(self):
        return self.size

    def __getitem__(self, index):
        return torch.full((self.num_frame, self.patch, self.patch), float(index))


@contextmanager
def reshape_clips(dataset, patch, frames):
    saved = dataset.patch, dataset.num_frame
    dataset.patch, dataset.num_frame = patch, frames
    try:
        yield
    finally:
        dataset.patch, dataset.num_frame = saved


def _shapes(loader, iterations):
    """(frames, patch) of each of the first ``iterations`` batches, over as many epochs as needed."""
    shapes = []
    while len(shapes) < iterations:
        for batch in loader:
            assert batch.shape[0] == BATCH
            shapes.append(tuple(batch.shape[1:3]))
            if len(shapes) == iterations:
                break
    return shapes


def _expected(first_iter, count):
    return [(SCHEDULE(i)[2], SCHEDULE(i)[1]) for i in range(first_iter, first_iter + count)]


@pytest.mark.parametrize('workers,persistent', [(0, False), (2, False), (2, True)])
def test_every_batch_has_the_shape_of_its_iteration(workers, persistent):
    dataset = ClipDataset()
    sampler = MultigridBatchSampler(RandomSampler(dataset, generator=torch.Generator().manual_seed(0)), BATCH,
                                    SCHEDULE)
    loader = DataLoader(MultigridDataset(dataset, reshape_clips), batch_sampler=sampler, num_workers=workers,
                        persistent_workers=persistent, prefetch_factor=4 if workers else None)
    assert _shapes(loader, 12) == _expected(1, 12)  # 5 batches per epoch: stages change inside and across epochs
    assert (dataset.patch, dataset.num_frame) == (8, 3)  # the main process's dataset is untouched


def test_resume_continues_with_the_stage_of_the_next_iteration():
    dataset = ClipDataset()
    sampler = MultigridBatchSampler(range(len(dataset)), BATCH, SCHEDULE, start_iter=4)  # mid stage 2
    loader = DataLoader(MultigridDataset(dataset, reshape_clips), batch_sampler=sampler)
    assert _shapes(loader, 8) == _expected(5, 8)


def test_distributed_ranks_train_the_same_stage_at_the_same_iteration():
    dataset = ClipDataset(size=13)
    shapes = []
    for rank in range(2):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=0)
        batches = MultigridBatchSampler(sampler, BATCH, SCHEDULE)
        batches.set_epoch(1)
        loader = DataLoader(MultigridDataset(dataset, reshape_clips), batch_sampler=batches)
        shapes.append(_shapes(loader, 9))
    assert shapes[0] == shapes[1] == _expected(1, 9)


def test_plain_indices_read_the_dataset_as_configured_and_bad_arguments_are_refused():
    dataset = MultigridDataset(ClipDataset(), reshape_clips)
    assert dataset[3].shape == (3, 8, 8) and dataset[(3, 4, 2)].shape == (2, 4, 4) and dataset.num_frame == 3
    assert len(MultigridBatchSampler(range(5), 2, SCHEDULE)) == 2
    assert len(MultigridBatchSampler(range(5), 2, SCHEDULE, drop_last=False)) == 3
    with pytest.raises(ValueError, match='batch_size'):
        MultigridBatchSampler(range(5), 0, SCHEDULE)
    with pytest.raises(ValueError, match='start_iter'):
        MultigridBatchSampler(range(5), 2, SCHEDULE, start_iter=-1)
