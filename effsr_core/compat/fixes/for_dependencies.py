"""Fixes for the toolboxes' dependencies: deprecation warnings that setuptools and diffusers give at every start,
about code that is not ours to change."""
from __future__ import annotations

import warnings


def _ignore_warning(message: str, category: type[Warning], module: str = '') -> bool:
    """Add an ``ignore`` filter for exactly this message (a regular expression matched at its start) and category,
    issued from ``module`` (a regular expression; '' for any); False when it is already there."""
    for action, text, kind, where, _ in warnings.filters:
        if (action == 'ignore' and kind is category and text is not None and text.pattern == message
                and (where.pattern if where is not None else '') == module):
            return False
    warnings.filterwarnings('ignore', message=message, category=category, module=module)
    return True


def pkg_resources_deprecation() -> bool:
    """setuptools 81 warns on every import (and reload) of ``pkg_resources``, which mim imports at start-up and
    mmengine's ``is_installed`` reloads: ignore that one message (it comes from the importer's line, so the filter
    names the message, not a module); every other warning stays."""
    return _ignore_warning(r'pkg_resources is deprecated as an API', UserWarning)


def diffusers_pytree_deprecation() -> bool:
    """diffusers 0.24 (imported by mmagic) registers each of its output classes with torch's deprecated
    ``_register_pytree_node``: ignore that FutureWarning where diffusers issues it (``diffusers.utils.outputs``);
    the same call from anywhere else still warns."""
    return _ignore_warning(r'`torch\.utils\._pytree\._register_pytree_node` is deprecated', FutureWarning,
                           r'diffusers\.utils\.outputs\Z')
