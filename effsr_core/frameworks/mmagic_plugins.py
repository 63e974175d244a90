"""Importing this module publishes all plugin components to MMagic's registries.

Use it from an MMagic / mmengine config::

    custom_imports = dict(imports=['effsr_core.frameworks.mmagic_plugins'], allow_failed_imports=False)
"""
from __future__ import annotations

from effsr_core import compat, registry
from effsr_core.frameworks import import_plugins

compat.install()


def register_all() -> None:
    """Idempotent: neutral components into ``mmagic.registry.MODELS``, then each plugin's ``mmagic_adapter``."""
    from mmagic.registry import MODELS

    import_plugins()
    for kind in registry.KINDS:
        for name, cls in registry.components(kind).items():
            existing = MODELS.get(name) if name in MODELS.module_dict else None
            if existing is cls:
                continue
            if existing is not None:
                raise KeyError(f'MMagic already has a model named {name!r} ({existing.__module__}); '
                               f'rename the plugin component {cls.__module__}.{cls.__name__}.')
            MODELS.register_module(name=name, module=cls)
    import_plugins(adapter='mmagic_adapter')


register_all()
