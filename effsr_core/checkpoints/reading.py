"""Reading checkpoint files safely: ``weights_only=True`` with the globals a caller allows, one-line errors.

A file that would import anything else (code could run) is refused with a ``CheckpointError``, as is a truncated or
foreign file. ``EFFSR_TRUST_CHECKPOINTS=1`` is the single opt-in to full unpickling, for files you trust.
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

CHECKPOINT_PREFIXES = ('generator.', 'module.')
TRUST_ENV = 'EFFSR_TRUST_CHECKPOINTS'
#: what mmengine's ``HistoryBuffer`` pickles beside the weights of every mmengine checkpoint (its message hub)
MMENGINE_HISTORY_BUFFER = 'mmengine.logging.history_buffer.HistoryBuffer'


class CheckpointError(ValueError):
    """The file is not a readable checkpoint, is refused as unsafe, or does not fit the network."""


def trust_checkpoints() -> bool:
    """Whether ``EFFSR_TRUST_CHECKPOINTS=1`` allows full (code-running) unpickling."""
    return os.environ.get(TRUST_ENV) == '1'


def numpy_globals() -> list:
    """numpy arrays, dtypes and scalars (mmengine's message hub keeps logged values in numpy arrays)."""
    try:
        import numpy as np
    except ImportError:
        return []
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    dtype_classes = {type(np.dtype(code)) for code in ('f8', 'f4', 'f2', 'i8', 'i4', 'i2', 'i1', 'u1', '?')}
    return [np.ndarray, np.dtype, *dtype_classes,  # the dtype classes are built, not imported, by a pickle
            multiarray._reconstruct, multiarray.scalar,
            (multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),  # files written with numpy 1
            (multiarray.scalar, 'numpy.core.multiarray.scalar'),
            bytes]  # an empty array's data


def attribute_getter(allowed: Mapping[Any, Callable[[str], bool]]) -> Callable[[Any, str], Any]:
    """A ``getattr`` for the unpickler that only reads the attributes ``allowed[obj](name)`` accepts.

    mmengine pickles ``HistoryBuffer._statistics_methods`` as ``getattr(HistoryBuffer, 'mean')``; a free
    ``getattr`` would let a file reach any attribute of an allowed class.
    """
    def restricted_getattr(obj, name):
        accepts = allowed.get(obj)
        if accepts is None or not accepts(name):
            raise pickle.UnpicklingError(f'getattr({getattr(obj, "__name__", type(obj).__name__)}, {name!r}) '
                                         'is not allowed')
        return getattr(obj, name)

    return restricted_getattr


class _Unused:
    """Inert stand-in for a toolbox object stored beside the weights, when only the weights are read."""

    def __setstate__(self, state) -> None:
        pass


def _unused_attribute(obj, name: str) -> None:
    """``getattr`` for the unpickler that only answers for the stand-in (with nothing)."""
    if obj is not _Unused:
        raise pickle.UnpicklingError(f'getattr({obj!r}, {name!r}) is not allowed')


def weights_reading_globals() -> list:
    """What reading the weights out of any of our checkpoints needs: numpy, and stand-ins for mmengine's
    training state (so that no toolbox is imported and none of its code runs)."""
    return [*numpy_globals(), (_Unused, MMENGINE_HISTORY_BUFFER), (_unused_attribute, 'builtins.getattr')]


def _global_name(entry) -> str:
    obj, name = entry if isinstance(entry, tuple) else (entry, None)
    return name or f'{obj.__module__}.{obj.__qualname__}'


def _refused_globals(path: str, allowed_globals: Sequence, error: BaseException) -> list[str]:
    """The globals that made the weights-only unpickler refuse ``path`` (empty if it failed for another reason)."""
    if zipfile.is_zipfile(path):
        try:
            allowed = {_global_name(entry) for entry in allowed_globals}
            return [name for name in torch.serialization.get_unsafe_globals_in_checkpoint(path) if name not in allowed]
        except Exception:  # noqa: BLE001 - unreadable: reported as such below
            return []
    found = re.search(r'GLOBAL (\S+)', str(error.__context__ or error))
    return [found.group(1)] if found else []


def load_file(path: str | Path, map_location: Any = 'cpu', allowed_globals: Sequence = ()) -> Any:
    """``torch.load`` with ``weights_only=True``, allowing ``allowed_globals`` (classes, functions or
    ``(object, 'module.name')`` pairs, see ``torch.serialization.safe_globals``) beside tensors and containers.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is truncated or not a PyTorch checkpoint, or it needs other globals (it could
            run code); one line naming the file.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'Checkpoint not found: {path}')
    try:
        if trust_checkpoints():
            return torch.load(path, map_location=map_location, weights_only=False)
        with torch.serialization.safe_globals(list(allowed_globals)):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - every reading failure becomes one line naming the file
        refused = _refused_globals(path, allowed_globals, error) if isinstance(error, pickle.UnpicklingError) else []
        if refused:
            raise CheckpointError(
                f'{path}: refused to load: it would import {", ".join(refused)}, which could run code. Load only '
                f'files you trust, and only then set {TRUST_ENV}=1 to unpickle them fully.') from None
        reason = str(error.__context__ or error).strip().split('. ')[0].splitlines()
        raise CheckpointError(f'{path} is not a readable PyTorch checkpoint (truncated, or another kind of file): '
                              f'{type(error).__name__}: {reason[0][:160] if reason else "empty"}.') from None


def generator_state(checkpoint: Any, param_key: str | None) -> dict[str, torch.Tensor]:
    """Pick the generator weights of a BasicSR, mmengine or bare checkpoint and strip wrapper prefixes."""
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f'A checkpoint must hold a dict, got {type(checkpoint).__name__}.')
    if param_key is not None:
        if param_key not in checkpoint:
            raise CheckpointError(f'Checkpoint has no {param_key!r}; keys: {", ".join(map(str, checkpoint))}.')
        state = checkpoint[param_key]
    elif 'state_dict' in checkpoint:  # mmengine / MMagic
        state = checkpoint['state_dict']
    elif 'params_ema' in checkpoint or 'params' in checkpoint:  # BasicSR: prefer the EMA weights
        state = checkpoint.get('params_ema', checkpoint.get('params'))
    else:
        state = checkpoint
    if any(key.startswith('generator.') for key in state):  # an MMagic editor: keep only its generator
        state = {key: value for key, value in state.items() if key.startswith('generator.')}
    for prefix in CHECKPOINT_PREFIXES:
        state = {key.removeprefix(prefix): value for key, value in state.items()}
    return state


def read_generator_state(path: str | Path, param_key: str | None = None) -> dict[str, torch.Tensor]:
    """The generator state dict stored in ``path``, read without running any pickled code.

    Args:
        path: BasicSR checkpoint (``params`` / ``params_ema``), mmengine / MMagic checkpoint (``state_dict`` with
            ``generator.`` keys) or a bare state dict; ``module.`` prefixes are stripped.
        param_key: Entry to read (default: ``params_ema`` when present, else ``params``, or ``state_dict``).
    """
    try:
        return generator_state(load_file(path, allowed_globals=weights_reading_globals()), param_key)
    except CheckpointError as error:
        message = str(error)
        raise CheckpointError(message if message.startswith(str(path)) else f'{path}: {message}') from None
