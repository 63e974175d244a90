"""Marks on patched functions, so that every fix is idempotent."""
from __future__ import annotations

_PATCHED = '__effsr_compat_patched__'


def _mark(func):
    setattr(func, _PATCHED, True)
    return func


def _is_patched(func) -> bool:
    return getattr(func, _PATCHED, False)
