"""A DataLoader rebuilt around a new dataset and batch sampler with every other setting of the one a toolbox built.

A plugin that changes what a toolbox's train loader reads (multigrid: each batch at its iteration's shape) wraps the
dataset and batches the loader's sampler itself, but must keep what the user configured: workers, collate_fn,
pinning (and its device), prefetching, worker seeding, the generator, ordering. The settings are read from the
loader's own constructor parameters, so a setting a newer torch adds, or a subclass's own (BasicSR's
``PrefetchDataLoader.num_prefetch_queue``), is carried over too. Framework-free (torch only).

A loader with workers is rebuilt with multiprocessing's temporary folder made first in this (the main) process, so
that its forked workers share it instead of each making and removing its own ``pymp-*`` folder at exit: a worker
that passes a batch's shared memory through multiprocessing's resource sharer keeps a socket in that folder, and its
removal raced with the socket (``OSError: [Errno 39] Directory not empty: '.../pymp-...'`` when the old loader's
workers shut down at the rebuild). The main process removes the shared folder at exit.
"""
from __future__ import annotations

import inspect
import multiprocessing.util
from typing import Any

from torch.utils.data import DataLoader, Dataset, Sampler

#: Constructor parameters the rebuild replaces: what to read (dataset) and how to batch it (batch_sampler, which
#: excludes the others).
REPLACED = ('dataset', 'batch_size', 'shuffle', 'sampler', 'batch_sampler', 'drop_last')


def loader_settings(loader: DataLoader) -> dict[str, Any]:
    """The constructor arguments of ``loader``'s class (DataLoader's and a subclass's own) that the loader keeps as
    attributes, except those ``REPLACED``."""
    names: dict[str, None] = {}
    for klass in reversed(type(loader).__mro__):
        if klass is object or not issubclass(klass, DataLoader):
            continue
        for name, parameter in inspect.signature(klass.__init__).parameters.items():
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY) and name != 'self':
                names[name] = None
    return {name: getattr(loader, name) for name in names if name not in REPLACED and hasattr(loader, name)}


def rebuild_loader(loader: DataLoader, dataset: Dataset, batch_sampler: Sampler) -> DataLoader:
    """A loader of ``loader``'s class reading ``dataset`` in the batches of ``batch_sampler``, with every other
    setting of ``loader``."""
    if getattr(loader, 'num_workers', 0) > 0:
        multiprocessing.util.get_temp_dir()  # made here, inherited by the workers (see the module docstring)
    return type(loader)(dataset=dataset, batch_sampler=batch_sampler, **loader_settings(loader))
