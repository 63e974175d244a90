"""MemSR (ICML 2022): memory-efficient plain SR networks.

Framework-free: ``conversion`` (the exact conversion of EDSR-style networks into ``PlainConvSR``, and the
re-parameterisable ``RepSR``), ``init`` (the winning initialisation of a plain student, Alg. 1, with dynamic width;
``python -m memsr_plugin.init``), ``losses`` (``InitAwareDistillationLoss``), ``distillation`` (the teacher's plain
form, the adapters and the losses of a batch, once for every toolbox) and ``lr_schedule`` (PyTorch's one-cycle LR
for BasicSR). Toolbox adapters: ``basicsr`` (describers of EDSR / MSRResNet, model ``MemSRDistillModel``) and
``mmagic`` (describer of EDSRNet, model ``MemSRDistillEditor``). Declared in the ``effsr.plugins`` entry-point group.
"""
from memsr_plugin import conversion, losses, lr_schedule, teacher  # noqa: F401  (registers PlainConvSR, RepSR,
#                                                                      EDSRPixelShuffle, the loss, the LR schedule)
