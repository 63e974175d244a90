"""SSL architectures (framework-free); importing registers them."""
from ssl_plugin.archs.ssl_basicvsr_arch import SSLBasicVSR

__all__ = ['SSLBasicVSR']
