"""Shared pieces of the efficient-SR plugins: the component registry and plugin discovery, environment fixes, the
NTIRE profiler, offline data and the entry points. ``effsr_core.basicsr`` / ``effsr_core.mmagic`` publish every
plugin to one toolbox each."""
__version__ = "0.1.0"
