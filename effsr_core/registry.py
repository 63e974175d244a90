"""Framework-neutral registry of plugin components.

Core modules (no BasicSR / MMagic import) register architectures and losses here once; the adapters in
``effsr_core.frameworks`` publish them to BasicSR's ``ARCH_REGISTRY`` / ``LOSS_REGISTRY`` and to MMagic's
``MODELS`` under the same name.
"""
from __future__ import annotations

from typing import Callable, TypeVar

KINDS = ('arch', 'loss')
T = TypeVar('T')

_components: dict[str, dict[str, type]] = {kind: {} for kind in KINDS}


def register(kind: str, name: str | None = None) -> Callable[[T], T]:
    """Class decorator: record ``cls`` as a component of ``kind`` ('arch' or 'loss')."""
    if kind not in KINDS:
        raise ValueError(f'Unknown component kind {kind!r}; allowed: {", ".join(KINDS)}.')

    def decorator(cls: T) -> T:
        key = name or cls.__name__
        existing = _components[kind].get(key)
        if existing is not None and existing is not cls:
            raise KeyError(f'{kind} {key!r} is registered twice: {existing.__module__} and {cls.__module__}.')
        _components[kind][key] = cls
        return cls

    return decorator


def components(kind: str) -> dict[str, type]:
    """Registered components of one kind, by name."""
    return dict(_components[kind])
