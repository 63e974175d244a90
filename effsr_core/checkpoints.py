"""Checkpoint files, framework-free: safe reading, atomic writing, and loading weights with clear mismatch errors.

Reading unpickles with ``weights_only=True``: plain containers, tensors and the classes a caller allows. A file
that would import anything else (code could run) is refused with a one-line ``CheckpointError``, as is a truncated
or foreign file. Setting ``EFFSR_TRUST_CHECKPOINTS=1`` is the single opt-in to full unpickling, for files you trust
(e.g. old checkpoints that pickled their own classes).
"""
from __future__ import annotations

import contextlib
import functools
import os
import pickle
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import nn

CHECKPOINT_PREFIXES = ('generator.', 'module.')
TRUST_ENV = 'EFFSR_TRUST_CHECKPOINTS'
#: what mmengine's ``HistoryBuffer`` pickles beside the weights of every mmengine checkpoint (its message hub)
MMENGINE_HISTORY_BUFFER = 'mmengine.logging.history_buffer.HistoryBuffer'
_EXTRA_STATE_SUFFIX = '_extra_state'  # torch's key for get_extra_state(); compared by set_extra_state, not shape


class CheckpointError(ValueError):
    """The file is not a readable checkpoint, is refused as unsafe, or does not fit the network."""


def trust_checkpoints() -> bool:
    """Whether ``EFFSR_TRUST_CHECKPOINTS=1`` allows full (code-running) unpickling."""
    return os.environ.get(TRUST_ENV) == '1'


# ------------------------------------------------------------------------------------------------ reading
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


# ------------------------------------------------------------------------------------------------ writing
@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = 'wb', **open_kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path`` and move it onto ``path`` once written, so that an interrupted write
    never leaves a partial file at ``path``; on error the temporary file is removed."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    handle, tmp = tempfile.mkstemp(prefix=f'.{name}.', suffix='.tmp', dir=folder)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # the permissions open() would give, not mkstemp's 0600
        with os.fdopen(handle, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` through ``atomic_write``."""
    with atomic_write(path) as f:
        torch.save(obj, f)


# ------------------------------------------------------------------------------------------------ loading weights
@dataclass
class LoadReport:
    """What a non-strict load left out: keys the network kept its own values for, and ignored checkpoint keys."""
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # same key, other shape: not loaded

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        parts = [f'{what}: {", ".join(keys)}' for what, keys in (
            ('missing from the checkpoint (left as they were)', self.missing),
            ('not in the network (ignored)', self.unexpected), ('other shape (not loaded)', self.mismatched)) if keys]
        return '; '.join(parts)


_SIZE_MISMATCH = re.compile(r'size mismatch for (\S+): copying a param with shape (.+) from checkpoint, '
                            r'the shape in current model is (.+)\.$')


def _shape(size) -> str:
    return str(list(size)).replace(' ', '')


def _normalised_keys(keys) -> set[str]:
    return {re.sub(r'\d+', '#', key) for key in keys if not key.endswith(_EXTRA_STATE_SUFFIX)}


@functools.lru_cache(maxsize=None)
def _registered_arch_keys(name: str) -> frozenset[str]:
    from effsr_core import registry

    example = registry.example('arch', name) or {}
    try:
        net = registry.components('arch')[name](**example.get('kwargs', {}))
    except Exception:  # noqa: BLE001 - an arch that cannot be built from its example is not a candidate
        return frozenset()
    return frozenset(_normalised_keys(net.state_dict()))


def guess_architecture(keys, candidates: Mapping[str, Any] = ()) -> str | None:
    """The architecture whose state-dict key names (digits normalised) best match ``keys``: one of the archs
    in ``effsr_core.registry`` or of ``candidates`` (name -> keys); None when nothing matches well."""
    from effsr_core import registry

    wanted = _normalised_keys(keys)
    known = {name: _registered_arch_keys(name) for name in registry.components('arch')}
    known.update({name: _normalised_keys(names) for name, names in dict(candidates).items()})
    scores = {name: len(wanted & names) / len(wanted | names) for name, names in known.items() if names}
    best = max(scores, key=scores.get, default=None)
    return best if best is not None and scores[best] >= 0.6 else None


def _describe(keys, network: nn.Module) -> str:
    arch = guess_architecture(keys, {type(network).__name__: network.state_dict().keys()})
    if arch is None:
        return 'its architecture is unrecognised'
    same = ' with other sizes (width, blocks or scale)' if arch == type(network).__name__ else ''
    return f'it looks like a state dict of {arch}{same}'


def load_weights(network: nn.Module, state: Mapping[str, Any], strict: bool = True,
                 skip_mismatched_shapes: bool = False, source: str = 'checkpoint') -> LoadReport:
    """``network.load_state_dict(state)`` that refuses a checkpoint of another network with one line: the first
    key whose shape differs (both shapes), is missing or is unexpected, and what the checkpoint seems to be.

    Networks that adapt or rebuild themselves in a load pre-hook (e.g. a pruned network built from the plan in
    its state dict) are compared after that step.

    Args:
        network: receives the weights.
        state: the state dict.
        strict: False leaves missing keys and ignores unexpected ones (see the returned report).
        skip_mismatched_shapes: with ``strict=False``, also leave keys whose shape differs (BasicSR's non-strict
            loading) instead of refusing them.
        source: names the checkpoint in messages (its path).

    Returns:
        What was not loaded (empty after a strict load).
    """
    captured: dict[str, list] = {}

    def capture(module, state_dict, prefix, metadata, strict_, missing, unexpected, errors):
        captured.update(missing=missing, unexpected=unexpected, errors=errors)

    handle = network.register_load_state_dict_pre_hook(capture)
    try:
        network.load_state_dict(state if isinstance(state, dict) else dict(state), strict=False)
    except RuntimeError:
        pass  # torch collected the problems in the captured lists
    except (ValueError, TypeError, KeyError) as error:  # raised by a network's own load hooks (e.g. a plan)
        raise CheckpointError(f'{source} does not fit {type(network).__name__}: {error}') from None
    finally:
        handle.remove()
    report = LoadReport(list(captured.get('missing', [])), list(captured.get('unexpected', [])))
    problems = []
    for message in captured.get('errors', []):
        mismatch = _SIZE_MISMATCH.match(message.strip())
        if mismatch and skip_mismatched_shapes and not strict:
            report.mismatched.append(mismatch.group(1))
            continue
        if mismatch:
            key, in_checkpoint, in_network = mismatch.groups()
            problems.append(f'{key!r} has shape {_dims(in_checkpoint)} in the checkpoint but '
                            f'{_dims(in_network)} in the network')
        else:
            problems.append(message.strip().splitlines()[0])
    if strict:
        expected = network.state_dict()
        problems += [f'{key!r} (shape {_shape(expected[key].shape)} in the network) is missing from the checkpoint'
                     if torch.is_tensor(expected.get(key)) else f'{key!r} is missing from the checkpoint'
                     for key in report.missing]
        problems += [f'{key!r} (shape {_shape(state[key].shape)} in the checkpoint) is not in the network'
                     if torch.is_tensor(state.get(key)) else f'{key!r} is not in the network'
                     for key in report.unexpected]
    if problems:
        more = f' (and {len(problems) - 1} more differences)' if len(problems) > 1 else ''
        raise CheckpointError(f'{source} does not fit {type(network).__name__}: {problems[0]}{more}; '
                              f'{_describe(state.keys(), network)}.')
    return report


def _dims(size_text: str) -> str:
    """``[a,b]`` from torch's ``torch.Size([a, b])`` text."""
    return _shape(int(number) for number in re.findall(r'\d+', size_text))
