"""A refused MMagic run ends with one line and leaves nothing behind, whatever script runs it: MMagic's own
``tools/train.py``, ``mim train`` (which runs it) or a lab's own, once ``effsr_core.mmagic`` is imported (a config's
``custom_imports`` does that while the config is read, before the runner exists).

mmengine creates the work_dir and its timestamped log folder first thing when it builds a runner, before the model,
the hooks and their checks exist; a refusal (``OptionError``, ``CheckpointError``) raised while the runner is built
or before its first iteration would otherwise leave them behind and end in a traceback. So the runner remembers
what its construction created, and the process's excepthook turns an uncaught refusal into: the folders of every
runner that had not started removed, the message as the last line (``error in <config>: ...``) and the exit status
``REFUSED_EXIT``, which the environment fix for ``mim train`` passes on without a traceback of its own. Library
use is unchanged: a caller that catches the refusal gets the exception as before.
"""
from __future__ import annotations

import functools
import inspect
import logging
import os
import shutil
import sys
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from effsr_core.checkpoints import CheckpointError
from effsr_core.compat.fixes.for_mim import REFUSED_EXIT  # argparse exits with 2, a crash with 1
from effsr_core.options import OptionError
REFUSALS = (OptionError, CheckpointError)


@dataclass
class _Built:
    """What one runner's construction created, and the runner once built (held weakly; None: refused while being
    built)."""
    created: list[Path]
    config: str | None
    runner: weakref.ref | None = field(default=None, repr=False)

    def started(self) -> bool:
        """Whether it trained an iteration (a runner already gone has done whatever it did: left as it is)."""
        if self.runner is None:
            return False
        runner = self.runner()
        return runner is None or runner.iter > 0


_BUILT: list[_Built] = []


def _missing_top(work_dir: Path) -> Path | None:
    """The topmost ancestor of ``work_dir`` (itself included) that does not exist yet, if any."""
    top = None
    for path in (work_dir, *work_dir.parents):
        if path.exists():
            break
        top = path
    return top


def remember_created_folders(runner_cls: type) -> bool:
    """Make ``runner_cls.__init__`` record what it creates under its ``work_dir``. Idempotent; returns whether it
    changed the class."""
    init = runner_cls.__init__
    if getattr(init, '__effsr_remembers__', False):
        return False
    signature = inspect.signature(init)

    @functools.wraps(init)
    def remembering_init(self, *args, **kwargs):
        arguments = signature.bind_partial(self, *args, **kwargs).arguments
        work_dir = Path(os.path.abspath(arguments.get('work_dir', '.')))
        config = arguments.get('cfg')
        top = _missing_top(work_dir)
        before = set(os.listdir(work_dir)) if top is None and work_dir.is_dir() else set()
        built = _Built(created=[], config=getattr(config, 'filename', None))
        _BUILT.append(built)
        try:
            init(self, *args, **kwargs)
        finally:
            if top is not None:
                built.created = [top] if top.exists() else []
            elif work_dir.is_dir():
                built.created = [work_dir / name for name in sorted(set(os.listdir(work_dir)) - before)]
        built.runner = weakref.ref(self)

    remembering_init.__effsr_remembers__ = True
    runner_cls.__init__ = remembering_init
    return True


def name_the_checkpoint_option(runner_cls: type) -> bool:
    """Make ``runner_cls.load_or_resume`` name the option a refused checkpoint came from (``load_from``, or
    ``resume`` for the newest checkpoint of the work_dir) before the file. Idempotent."""
    load_or_resume = runner_cls.load_or_resume
    if getattr(load_or_resume, '__effsr_names_option__', False):
        return False

    @functools.wraps(load_or_resume)
    def naming_load_or_resume(self):
        try:
            return load_or_resume(self)
        except CheckpointError as error:
            option = 'load_from' if self._load_from is not None else 'resume'
            raise CheckpointError(f'{option}: {error}') from None

    naming_load_or_resume.__effsr_names_option__ = True
    runner_cls.load_or_resume = naming_load_or_resume
    return True


def end_refused_runs(kind: type, error: BaseException, traceback) -> None:
    """The excepthook part: for an uncaught refusal, remove what the runners that never started created, print
    the message as the last line and exit with ``REFUSED_EXIT``; anything else goes to the previous hook."""
    if not issubclass(kind, REFUSALS):
        _PREVIOUS_HOOK(kind, error, traceback)
        return
    _close_writers()  # the visualisers' and loggers' files are closed before their folders go
    config = None
    for built in _BUILT:
        if not built.started():
            for path in built.created:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        config = built.config or config
    sys.stdout.flush()
    where = f' in {config}' if config else ''
    print(f'error{where}: {error}', file=sys.stderr, flush=True)
    os._exit(REFUSED_EXIT)  # an excepthook cannot choose the status; nothing else is left to run


def _close_writers() -> None:
    """Close what writes into the runners' folders: every visualiser (a TensorBoard backend's writer thread is
    joined) and the log files; a thread still writing there after this can only fail because the folders go, so
    its error is not shown."""
    from mmengine.visualization import Visualizer

    for visualizer in list(Visualizer._instance_dict.values()):
        try:
            visualizer.close()
        except Exception:  # noqa: BLE001  (a backend that cannot close: its folder goes anyway)
            pass
    logging.shutdown()
    threading.excepthook = lambda arguments: None


_PREVIOUS_HOOK = sys.excepthook


def install() -> None:
    """Idempotent: the runner remembers what it creates and names the option of a refused checkpoint, and
    refusals end the process in one line."""
    global _PREVIOUS_HOOK
    from mmengine.runner import Runner

    remember_created_folders(Runner)
    name_the_checkpoint_option(Runner)
    if sys.excepthook is not end_refused_runs:
        _PREVIOUS_HOOK = sys.excepthook
        sys.excepthook = end_refused_runs
