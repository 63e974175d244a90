"""Architectures of the shared core; importing this package registers them (see ``effsr_core.registry``)."""
from effsr_core.archs import rfdn_arch

__all__ = ['rfdn_arch']
