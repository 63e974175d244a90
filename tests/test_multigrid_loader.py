"""The DataLoader rebuild both multigrid adapters share (``effsr_core.data.loader_rebuild``): the new dataset and
batch sampler, every other setting of the loader the toolbox built (torch's and a subclass's own)."""
import multiprocessing
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from effsr_core.data.loader_rebuild import REPLACED, loader_settings, rebuild_loader


def _collate(batch):
    return torch.stack([item[0] for item in batch])


def _seed_worker(worker_id):
    torch.manual_seed(worker_id)


#: A value other than the default for every DataLoader setting the rebuild keeps.
SETTINGS = dict(num_workers=2, collate_fn=_collate, pin_memory=True, timeout=7.0, worker_init_fn=_seed_worker,
                multiprocessing_context=multiprocessing.get_context('spawn'),
                generator=torch.Generator().manual_seed(3), prefetch_factor=5, persistent_workers=True,
                pin_memory_device='cpu', in_order=False)


def _dataset(size=6):
    return TensorDataset(torch.arange(size, dtype=torch.float32))


def test_every_setting_of_the_loader_is_kept():
    original = DataLoader(_dataset(), batch_size=2, shuffle=True, drop_last=True, **SETTINGS)
    batches = [[0, 1], [2, 3]]
    rebuilt = rebuild_loader(original, _dataset(4), batches)
    assert type(rebuilt) is DataLoader and rebuilt.batch_sampler is batches and len(rebuilt.dataset) == 4
    for name, value in SETTINGS.items():
        assert getattr(rebuilt, name) == value, name
    # every DataLoader parameter is either kept or one of those the rebuild replaces: none is silently dropped
    import inspect

    parameters = set(inspect.signature(DataLoader.__init__).parameters) - {'self'}
    assert parameters == set(loader_settings(original)) | set(REPLACED)


def test_a_loader_without_workers_rebuilds_and_reads_the_new_batches():
    original = DataLoader(_dataset(), batch_size=3, collate_fn=_collate)
    rebuilt = rebuild_loader(original, _dataset(), [[5, 4], [0]])
    assert rebuilt.prefetch_factor is None and rebuilt.num_workers == 0
    assert [batch.tolist() for batch in rebuilt] == [[5.0, 4.0], [0.0]]


def test_a_subclass_keeps_its_own_settings():
    """BasicSR's PrefetchDataLoader (``num_prefetch_queue``) is rebuilt as itself."""
    import effsr_core.basicsr  # noqa: F401  (environment fixes first, as every entry point does)
    from basicsr.data.prefetch_dataloader import PrefetchDataLoader

    original = PrefetchDataLoader(num_prefetch_queue=3, dataset=_dataset(), batch_size=2, num_workers=1,
                                  prefetch_factor=4)
    rebuilt = rebuild_loader(original, _dataset(), [[1, 0]])
    assert type(rebuilt) is PrefetchDataLoader
    assert (rebuilt.num_prefetch_queue, rebuilt.num_workers, rebuilt.prefetch_factor) == (3, 1, 4)


@pytest.mark.parametrize('workers', [0, 2])
def test_both_adapters_keep_pinning_ordering_and_prefetching(workers):
    """The MMagic and the BasicSR multigrid loaders are the one rebuild: they no longer differ on pin_memory_device,
    in_order or prefetch_factor."""
    import effsr_core.basicsr  # noqa: F401
    import effsr_core.mmagic  # noqa: F401
    from multigrid_plugin.basicsr import pipeline
    from multigrid_plugin.basicsr.settings import BasicSRMultigrid
    from multigrid_plugin.mmagic.data import multigrid_loader
    from multigrid_plugin.options import MULTIGRID, resolve

    settings = resolve(MULTIGRID.check({'spatial_sizes': [4], 'temporal_sizes': [2]}), 4)
    original = DataLoader(_dataset(), batch_size=2, drop_last=True, num_workers=workers, pin_memory_device='cpu',
                          in_order=False, prefetch_factor=3 if workers else None)
    mmagic = multigrid_loader(original, range(6), settings.training, reshape=None)
    basicsr = pipeline.multigrid_loader(original, range(6), BasicSRMultigrid(settings, scale=4), start_iter=0)
    for rebuilt in (mmagic, basicsr):
        assert loader_settings(rebuilt) == loader_settings(original)
        assert (rebuilt.pin_memory_device, rebuilt.in_order, rebuilt.prefetch_factor) == (
            'cpu', False, 3 if workers else None)


WORKER_TEMP_DIR_SCRIPT = '''
import multiprocessing, multiprocessing.util
import torch
from torch.utils.data import DataLoader, Dataset
from effsr_core.data.loader_rebuild import rebuild_loader

class TempDirOfTheWorker(Dataset):
    def __len__(self):
        return 2
    def __getitem__(self, index):
        return multiprocessing.util.get_temp_dir()

context = multiprocessing.get_context('fork')
original = DataLoader(TempDirOfTheWorker(), batch_size=1, num_workers=1, multiprocessing_context=context)
rebuilt = rebuild_loader(original, TempDirOfTheWorker(), [[0], [1]])
seen = {batch[0] for batch in rebuilt}
print(seen == {multiprocessing.util.get_temp_dir()})
'''


@pytest.mark.slow
def test_rebuilt_workers_share_the_main_process_temp_dir(tmp_path):
    """In a fresh interpreter (no temporary folder made yet): the workers of a rebuilt loader use the main process's
    multiprocessing folder instead of making and removing their own (the pymp-* race of the rebuild)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, '-c', WORKER_TEMP_DIR_SCRIPT], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path, env={**__import__('os').environ,
                                                            'PYTHONPATH': str(Path(__file__).parents[1])})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == 'True', result.stdout
