"""BasicSR adapter of MemSR: describers of BasicSR's EDSR and MSRResNet for the conversion."""
from memsr_plugin.basicsr import conversion  # noqa: F401
