"""SSL structured pruning of BasicVSR / BasicVSR-uni, with the L1-norm and ASSL baselines (CVPR 2023).

Framework-free: ``archs`` (SSLBasicVSR), ``pruning`` (plan, selection, regularisation, pruner), ``losses``
(TemporalFinetuneLoss) and ``lifecycle`` (select → teacher → regularise → prune → fine-tune, once for every toolbox).
Toolbox adapters: ``basicsr`` (model ``SSLPruningModel``) and ``mmagic`` (model ``SSLPruningVSR``, hook
``SSLPruningHook``). Declared in the ``effsr.plugins`` entry-point group.
"""
from ssl_plugin import archs, losses  # noqa: F401  (registers the architecture and the loss)
