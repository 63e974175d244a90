"""Read the generator weights out of any checkpoint file: BasicSR, mmengine / MMagic or a bare state dict."""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_PREFIXES = ('generator.', 'module.')


class CheckpointError(ValueError):
    """The file does not hold the weights asked for."""


def _state_dict_from_checkpoint(checkpoint: Any, param_key: str | None) -> dict[str, torch.Tensor]:
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


def _load_checkpoint_file(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True``, except for mmengine checkpoints (see below)."""
    # Only zip checkpoints (torch >= 1.6) can be inspected; legacy ones go straight to the weights-only loader.
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) if zipfile.is_zipfile(path) else []
    # mmengine checkpoints pickle training state (message hub, HistoryBuffer, ...) beside the weights, which the
    # weights-only unpickler refuses; they are trusted here only because they come from mmengine.
    trusted_mmengine = any(name.startswith('mmengine.') for name in unsafe)
    return torch.load(path, map_location='cpu', weights_only=not trusted_mmengine)


def read_generator_state(path: str | Path, param_key: str | None = None) -> dict[str, torch.Tensor]:
    """The generator state dict stored in ``path``.

    Args:
        path: BasicSR checkpoint (``params`` / ``params_ema``), mmengine / MMagic checkpoint (``state_dict`` with
            ``generator.`` keys) or a bare state dict; ``module.`` prefixes are stripped.
        param_key: Entry to read (default: ``params_ema`` when present, else ``params``, or ``state_dict``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'Checkpoint not found: {path}')
    return _state_dict_from_checkpoint(_load_checkpoint_file(path), param_key)
