"""BasicSR adapter of MemSR: describers of BasicSR's EDSR and MSRResNet for the conversion, and the distillation
model ``MemSRDistillModel``."""
from memsr_plugin.basicsr import conversion  # noqa: F401
from memsr_plugin.basicsr.model import MemSRDistillModel

__all__ = ['MemSRDistillModel']
