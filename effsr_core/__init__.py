"""Shared pieces of the efficient-SR plugins: environment fixes, profiler, offline data, entry points."""
__version__ = "0.1.0"
