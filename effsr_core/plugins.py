"""Plugin discovery: packages announce themselves in the ``effsr.plugins`` entry-point group.

A plugin is a package whose import registers its framework-neutral components (``effsr_core.registry``) and which
may have ``basicsr`` / ``mmagic`` subpackages registering its toolbox-specific classes. This project's own plugins
are declared in its ``setup.cfg``; a lab adds its own the same way::

    [options.entry_points]
    effsr.plugins =
        my_method = my_lab.my_method
"""
from __future__ import annotations

import importlib
import importlib.util
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

GROUP = 'effsr.plugins'
#: The core's own components (not a plugin: it is imported first, whatever is installed).
CORE_PACKAGES = ('effsr_core.archs',)


class PluginError(ImportError):
    """A declared plugin cannot be imported."""


def declared_plugins() -> list[EntryPoint]:
    """The entry points of the ``effsr.plugins`` group, sorted by name (a deterministic import order)."""
    return sorted(entry_points(group=GROUP), key=lambda ep: ep.name)


def _import(module: str, plugin: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except Exception as error:  # a broken plugin must say which one, whatever it raised
        raise PluginError(f'plugin {plugin!r} (entry point {GROUP}: {module}) failed to import: '
                          f'{type(error).__name__}: {error}') from error


def import_plugins(toolbox: str | None = None) -> list[str]:
    """Import the core components and every declared plugin, and with ``toolbox`` ('basicsr' or 'mmagic') each
    plugin's subpackage of that name when it has one. Returns the imported plugin package names."""
    for package in CORE_PACKAGES:
        importlib.import_module(package)
    packages = []
    for entry in declared_plugins():
        package = _import(entry.value, entry.name).__name__
        packages.append(package)
        if toolbox is not None and importlib.util.find_spec(f'{package}.{toolbox}') is not None:
            _import(f'{package}.{toolbox}', entry.name)
    return packages
