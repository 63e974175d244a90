"""MMagic adapter of MemSR: the describer of MMagic's EDSRNet for the conversion."""
from memsr_plugin.mmagic import conversion  # noqa: F401
