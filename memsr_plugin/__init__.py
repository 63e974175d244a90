"""MemSR (ICML 2022): memory-efficient plain SR networks.

Framework-free: ``archs`` (the teacher ``EDSRPixelShuffle`` and the plain ``PlainConvSR``), ``conversion`` (the
exact conversion of EDSR-style networks into ``PlainConvSR``, and the re-parameterisable ``RepSR``),
``winning_init`` (the winning initialisation of a plain student, Alg. 1, with dynamic width), ``losses``
(``InitAwareDistillationLoss``), ``distillation`` (the teacher's plain form, the adapters and the losses of a batch,
once for every toolbox), ``lr_schedule`` (PyTorch's one-cycle LR for BasicSR) and ``options`` (the declared
settings). Command lines: ``python -m memsr_plugin.convert`` and ``python -m memsr_plugin.init``. Toolbox adapters:
``basicsr`` (describers of EDSR / MSRResNet, model ``MemSRDistillModel``) and ``mmagic`` (describer of EDSRNet,
model ``MemSRDistillEditor``). Declared in the ``effsr.plugins`` entry-point group.
"""
from memsr_plugin import archs, conversion, losses, lr_schedule  # noqa: F401  (registers EDSRPixelShuffle,
#                                                                  PlainConvSR, RepSR, the loss, the LR schedule)
