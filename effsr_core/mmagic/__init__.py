"""MMagic side of the core: importing this package publishes every plugin into MMagic's / mmengine's registries.
The only core package (with ``effsr_core.basicsr``) that imports MMagic or mmengine.

From a config::

    custom_imports = dict(imports=['effsr_core.mmagic'], allow_failed_imports=False)

or, in a lab's own ``tools/train.py``, one line before the runner is built: ``import effsr_core.mmagic``.
"""
from effsr_core.mmagic.registration import register_all

register_all()

__all__ = ['register_all']
