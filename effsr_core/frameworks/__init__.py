"""Thin adapters that publish the plugins to BasicSR and MMagic (the only place that imports both)."""
import importlib

#: Packages whose import registers framework-neutral components (architectures, losses).
PLUGIN_PACKAGES = ('effsr_core.archs', 'ssl_plugin', 'memsr_plugin', 'multigrid_plugin')


def import_plugins(adapter: str | None = None) -> None:
    """Import every plugin package and, if given, each plugin's ``<adapter>`` module (when it has one)."""
    for package in PLUGIN_PACKAGES:
        importlib.import_module(package)
        if adapter is None:
            continue
        try:
            importlib.import_module(f'{package}.{adapter}')
        except ModuleNotFoundError as error:
            if error.name != f'{package}.{adapter}':
                raise
