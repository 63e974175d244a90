"""Atomic checkpoint writes: a temporary file in the same folder, renamed onto the target once complete."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

import torch


def _temporary_beside(path: str) -> tuple[int, str]:
    """An open handle and the name of a new, empty temporary file in the folder of ``path``."""
    folder, name = os.path.split(os.path.abspath(path))
    handle, tmp = tempfile.mkstemp(prefix=f'.{name}.', suffix='.tmp', dir=folder)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # the permissions open() would give, not mkstemp's 0600
    except BaseException:
        os.close(handle)
        os.unlink(tmp)
        raise
    return handle, tmp


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = 'wb', **open_kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path`` and move it onto ``path`` once written, so that an interrupted write
    never leaves a partial file at ``path``; on error the temporary file is removed."""
    path = os.fspath(path)
    handle, tmp = _temporary_beside(path)
    try:
        with os.fdopen(handle, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def staged_path(path: str | Path) -> Iterator[str]:
    """The name of a temporary file beside ``path``, for writers that take a file name and for checks that read
    the file back: it is moved onto ``path`` when the block ends normally and removed when the block raises, so
    ``path`` only ever holds a file that passed the block (an exported network that was verified)."""
    path = os.fspath(path)
    handle, tmp = _temporary_beside(path)
    os.close(handle)
    try:
        yield tmp
        handle = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` through ``atomic_write``."""
    with atomic_write(path) as f:
        torch.save(obj, f)
