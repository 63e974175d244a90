"""SSL in MMagic: model ``SSLPruningVSR`` and hook ``SSLPruningHook`` (imported by ``effsr_core.mmagic``)."""
from ssl_plugin.mmagic.hook import SSLPruningHook
from ssl_plugin.mmagic.model import SSLPruningVSR

__all__ = ['SSLPruningHook', 'SSLPruningVSR']
