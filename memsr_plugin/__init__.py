"""MemSR (ICML 2022): memory-efficient plain SR networks.

Framework-free: ``conversion`` (the exact conversion of EDSR-style networks into ``PlainConvSR``, and the
re-parameterisable ``RepSR``), ``init`` (the winning initialisation of a plain student, Alg. 1, with dynamic width;
``python -m memsr_plugin.init``). Toolbox adapters: ``basicsr`` and ``mmagic`` (describers of the toolboxes' EDSR,
MSRResNet and EDSRNet for the conversion). Declared in the ``effsr.plugins`` entry-point group.
"""
from memsr_plugin import conversion  # noqa: F401  (registers PlainConvSR and RepSR)
