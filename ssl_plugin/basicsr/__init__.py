"""SSL in BasicSR: ``model_type: SSLPruningModel`` (imported by ``effsr_core.basicsr`` when it registers plugins)."""
from ssl_plugin.basicsr.model import SSLPruningModel

__all__ = ['SSLPruningModel']
