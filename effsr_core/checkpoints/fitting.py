"""Loading weights into a network with clear errors: the first key that does not fit (both shapes), and what the
checkpoint seems to be (the registered architecture whose key names it matches)."""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

from effsr_core.checkpoints.reading import CheckpointError

_EXTRA_STATE_SUFFIX = '_extra_state'  # torch's key for get_extra_state(); compared by set_extra_state, not shape


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
