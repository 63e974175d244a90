"""BasicSR side of the core: publishing every plugin into BasicSR's registries, the options check, the entry
points, model building for the profiler and a short-validation dataset (``VideoRecurrentSubsetTestDataset``).
The only core package (with ``effsr_core.mmagic``) that imports BasicSR as a toolbox.

A lab's own BasicSR ``train.py`` (the Real-ESRGAN / HAT pattern) gets every plugin with one line::

    import effsr_core.basicsr  # noqa: F401  (registers every plugin's archs, losses, models in BasicSR)
"""
from effsr_core.basicsr.registration import register_all

register_all()

__all__ = ['register_all']
