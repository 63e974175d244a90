"""Publish all plugin components to BasicSR's registries (architectures, losses, models)."""
from __future__ import annotations

from effsr_core import compat, registry
from effsr_core.frameworks import import_plugins

_done = False


def register_all() -> None:
    """Idempotent: environment fixes, neutral components, then each plugin's ``basicsr_adapter``."""
    global _done
    if _done:
        return
    compat.install()
    from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY

    import_plugins()
    for kind, target in (('arch', ARCH_REGISTRY), ('loss', LOSS_REGISTRY)):
        for name, cls in registry.components(kind).items():
            existing = target._obj_map.get(name)
            if existing is cls:
                continue
            if existing is not None:
                raise KeyError(f'BasicSR already has a {kind} named {name!r} ({existing.__module__}); '
                               f'rename the plugin component {cls.__module__}.{cls.__name__}.')
            target.register(cls)
    import_plugins(adapter='basicsr_adapter')
    _done = True
