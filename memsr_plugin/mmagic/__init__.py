"""MMagic adapter of MemSR: the describer of MMagic's EDSRNet for the conversion, and the distillation model
``MemSRDistillEditor``."""
from memsr_plugin.mmagic import conversion  # noqa: F401
from memsr_plugin.mmagic.model import MemSRDistillEditor

__all__ = ['MemSRDistillEditor']
