"""Framework-neutral registry of plugin components: register once, published to every toolbox where the kind applies.

Kinds and where ``effsr_core.basicsr`` / ``effsr_core.mmagic`` publish them:

========================  =====================================  ==================================================
kind                      BasicSR                                MMagic / mmengine
========================  =====================================  ==================================================
``arch``                  ``ARCH_REGISTRY``                      ``MODELS``
``loss``                  ``LOSS_REGISTRY``                      ``MODELS``
``lr_scheduler``          found by name by the plugin models'    ``PARAM_SCHEDULERS`` (wrapped as an mmengine
                          ``setup_schedulers`` (BasicSR has no   param scheduler)
                          scheduler registry)
========================  =====================================  ==================================================

Contracts: an ``lr_scheduler`` is a ``torch.optim.lr_scheduler.LRScheduler`` subclass built as
``cls(optimizer, **options)`` and stepped once per iteration. There is no sampler kind: the one sampler in the
plugins, multigrid's shape-carrying batch sampler, needs the run's schedule and is built by multigrid's own adapters.
Toolbox-only kinds (BasicSR models, MMagic models and hooks) are registered by the plugins' ``basicsr`` / ``mmagic``
subpackages directly into the toolbox registries.

Every component declares a tiny ``example`` (constructor arguments and inputs), so that one test can build, run
and round-trip every registered component without a hand-kept list (``tests/test_registered_components.py``).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, TypeVar

KINDS = ('arch', 'loss', 'lr_scheduler')
T = TypeVar('T')

_components: dict[str, dict[str, type]] = {kind: {} for kind in KINDS}
_examples: dict[str, dict[str, Mapping[str, Any]]] = {kind: {} for kind in KINDS}


def register(kind: str, name: str | None = None, example: Mapping[str, Any] | None = None) -> Callable[[T], T]:
    """Class decorator: record ``cls`` as a component of ``kind`` under ``name`` (default: the class name).

    Args:
        kind: one of ``KINDS``.
        name: registered name; it must not clash with a name the toolboxes already use.
        example: a tiny working configuration for the registry-wide test: ``kwargs`` (constructor arguments) and,
            for architectures, ``input`` (an input shape), for losses, ``inputs`` (a callable returning the
            positional arguments of ``forward``).
    """
    if kind not in KINDS:
        raise ValueError(f'Unknown component kind {kind!r}; allowed: {", ".join(KINDS)}.')

    def decorator(cls: T) -> T:
        key = name or cls.__name__
        existing = _components[kind].get(key)
        if existing is not None and existing is not cls:
            raise KeyError(f'{kind} {key!r} is registered twice: {existing.__module__}.{existing.__name__} and '
                           f'{cls.__module__}.{cls.__name__}.')
        _components[kind][key] = cls
        if example is not None:
            _examples[kind][key] = dict(example)
        return cls

    return decorator


def components(kind: str) -> dict[str, type]:
    """Registered components of one kind, by name."""
    return dict(_components[kind])


def example(kind: str, name: str) -> Mapping[str, Any] | None:
    """The tiny example configuration a component declared, if any."""
    return _examples[kind].get(name)


def publish(kind: str, contains: Callable[[str], Any], add: Callable[[str, type], None], toolbox: str) -> None:
    """Add every component of ``kind`` to a toolbox registry; a name the toolbox already uses for another class
    raises ``KeyError`` naming both. ``contains(name)`` returns the class registered there (or None)."""
    for key, cls in _components[kind].items():
        existing = contains(key)
        if existing is cls:
            continue
        if existing is not None:
            raise KeyError(f'{toolbox} already has a component named {key!r} ({existing.__module__}.'
                           f'{getattr(existing, "__name__", existing)}); rename the plugin {kind} '
                           f'{cls.__module__}.{cls.__name__}.')
        add(key, cls)
