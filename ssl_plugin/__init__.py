"""SSL structured pruning of BasicVSR / BasicVSR-uni, with the L1-norm and ASSL baselines (CVPR 2023).

Framework-free core: ``archs`` (SSLBasicVSR), ``pruning`` (plan, selection, regularisation, driver), ``losses``
(TemporalFinetuneLoss). Adapters: ``basicsr_adapter`` (model ``SSLPruningModel``) and ``mmagic_adapter``.
"""
from ssl_plugin import archs, losses  # noqa: F401  (registers the architecture and the loss)
