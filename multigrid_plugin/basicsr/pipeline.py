"""Multigrid inside BasicSR's own ``train_pipeline``, which has no hook: two of the functions it calls are wrapped
when this package is imported (``install``, idempotent). Both are no-ops for options without a ``multigrid`` section.

* ``basicsr.train.create_train_val_dataloader``: the run's multigrid settings are resolved (once per
  ``train_pipeline``) and the train loader BasicSR built is rebuilt around the same dataset and ``EnlargedSampler``
  (``effsr_core.data.loader_rebuild``): the dataset wrapped in ``MultigridDataset`` (each sample read at its
  iteration's shape, ``datasets.reshape``) and batches from ``MultigridBatchSampler`` counting iterations from the
  resumed one; every other loader setting stays BasicSR's. The schedule is plotted.
* ``basicsr.train.build_model``: the model class ``model_type`` names gets ``MultigridTraining`` mixed in
  (``model.multigrid_model_class``) and receives those same settings, for ``MultigridLR`` and the stage logs.
"""
from __future__ import annotations

import copy
import functools
import os.path as osp
from typing import Any, Callable

from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY
from torch.utils.data import DataLoader

from effsr_core.checkpoints import load_file
from effsr_core.data.loader_rebuild import rebuild_loader
from effsr_core.distributed import is_main_process
from multigrid_plugin.basicsr.datasets import reshape
from multigrid_plugin.basicsr.model import multigrid_model_class
from multigrid_plugin.basicsr.settings import SECTION, BasicSRMultigrid
from multigrid_plugin.lr_schedule import MultigridLR
from multigrid_plugin.plot import PLOT_FILE, plot_schedule
from multigrid_plugin.sampling import MultigridBatchSampler, MultigridDataset

_WRAPPED = '__multigrid_wrapper__'
#: The settings the train loader wrapper resolved, handed to the model wrapper of the same ``train_pipeline`` call
#: (BasicSR passes only ``opt`` between them): ``id(opt) -> (opt, run)``, taken once; holding ``opt`` keeps its
#: id from being reused meanwhile.
_RESOLVED: dict[int, tuple[dict, BasicSRMultigrid]] = {}


def resumed_iteration(opt: dict) -> int:
    """Iterations already trained: those of ``path.resume_state`` (set by BasicSR's ``load_resume_state``, also for
    ``--auto_resume``, before the loaders are built), read with the same safe loader as the resume itself."""
    path = (opt.get('path') or {}).get('resume_state')
    if not path:
        return 0
    from effsr_core.compat.fixes import basicsr_state_globals

    return int(load_file(path, 'cpu', basicsr_state_globals())['iter'])


class EpochBatchSampler(MultigridBatchSampler):
    """``MultigridBatchSampler`` whose count of iterations advances only by epochs handed out completely.

    BasicSR's ``CPUPrefetcher`` makes an iterator of the loader when it is built and replaces it by a new one
    (``reset()``) before the first epoch; with workers the discarded iterator has already drawn its prefetched
    batches. BasicSR's loop consumes every epoch to its end (all but the last), so every new iterator starts from
    the iterations of the epochs completed before it.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._completed = self.iteration

    def __iter__(self):
        self.iteration = self._completed
        yield from super().__iter__()
        self._completed = self.iteration


def multigrid_loader(loader: DataLoader, sampler: Any, run: BasicSRMultigrid, start_iter: int) -> DataLoader:
    """``loader`` rebuilt to yield each iteration's batch at that iteration's shape (same settings otherwise)."""
    batch_sampler = EpochBatchSampler(sampler, loader.batch_size, run.settings.training, drop_last=True,
                                      start_iter=start_iter)
    return rebuild_loader(loader, MultigridDataset(loader.dataset, reshape), batch_sampler)


def _plot(opt: dict, run: BasicSRMultigrid) -> None:
    train = opt['train']
    uses_lr = (train.get('scheduler') or {}).get('type') == MultigridLR.__name__
    path = plot_schedule(run.settings, osp.join(opt['path']['experiments_root'], PLOT_FILE),
                         base_lr=train['optim_g']['lr'] if uses_lr else None)
    get_root_logger().info(f'multigrid: schedule plotted in {path}')


def _take_resolved(opt: dict) -> BasicSRMultigrid | None:
    """The settings the loader wrapper resolved for this ``opt``, if it did."""
    held, run = _RESOLVED.pop(id(opt), (None, None))
    return run if held is opt else None


def _wrap(original: Callable) -> Callable:
    def decorate(wrapper: Callable) -> Callable:
        wrapper = functools.wraps(original)(wrapper)
        setattr(wrapper, _WRAPPED, True)
        return wrapper
    return decorate


def install() -> bool:
    """Wrap BasicSR's loader and model builders (idempotent); returns whether anything changed."""
    import basicsr.train

    if getattr(basicsr.train.create_train_val_dataloader, _WRAPPED, False):
        return False
    create_loaders, build_model = basicsr.train.create_train_val_dataloader, basicsr.train.build_model

    @_wrap(create_loaders)
    def create_train_val_dataloader(opt, logger):
        result = create_loaders(opt, logger)
        if opt.get(SECTION) is None:
            return result
        train_loader, train_sampler, *rest = result
        run = BasicSRMultigrid.from_options(opt, MODEL_REGISTRY.get(opt['model_type']))
        _RESOLVED[id(opt)] = (opt, run)
        start_iter = resumed_iteration(opt)
        stages = '; '.join(f'{s.index + 1}: {s.patch_size} px x {s.frames} frames, iterations '
                           f'{run.offset + s.first_iter}-{run.offset + s.last_iter}' for s in run.schedule.stages)
        logger.info(f'multigrid: {run.schedule.num_stages} stages ({stages}); the loader starts after iteration '
                    f'{start_iter}.')
        if is_main_process():
            _plot(opt, run)
        return (multigrid_loader(train_loader, train_sampler, run, start_iter), train_sampler, *rest)

    @_wrap(build_model)
    def build_multigrid_model(opt):
        if opt.get(SECTION) is None:
            return build_model(opt)
        model = multigrid_model_class(MODEL_REGISTRY.get(opt['model_type']))(copy.deepcopy(opt),
                                                                              multigrid=_take_resolved(opt))
        get_root_logger().info(f'Model [{type(model).__name__}] is created.')
        return model

    basicsr.train.create_train_val_dataloader = create_train_val_dataloader
    basicsr.train.build_model = build_multigrid_model
    return True
