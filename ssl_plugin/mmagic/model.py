"""MMagic model ``SSLPruningVSR``: MMagic's BasicVSR model whose generator goes through SSL's lifecycle
(``ssl_plugin.lifecycle``), driven by ``SSLPruningHook``.

Config sketch (see ``options/mmagic/ssl/``)::

    custom_imports = dict(imports=['effsr_core.mmagic'], allow_failed_imports=False)
    model = dict(type='SSLPruningVSR', generator=dict(type='SSLBasicVSR', ...),
                 pixel_loss=dict(type='CharbonnierLoss'), tf_loss=dict(type='TemporalFinetuneLoss'),
                 pruning=dict(method='ssl', ratio=0.5, regularization=dict(t1=5, t2=3375)), ...)
    custom_hooks = [dict(type='SSLPruningHook')]
    load_from = 'basicvsr_reds4.pth'   # MMagic BasicVSR (or BasicSR / our) weights; mapped on load
    param_scheduler = ...              # the FINE-TUNING schedule: it starts at the prune iteration
"""
from __future__ import annotations

from mmagic.models.editors.basicvsr import BasicVSR

from effsr_core.options import check_keys, parameter_names
from mmagic.registry import MODELS
from ssl_plugin.lifecycle import SSLPruningLifecycle
from ssl_plugin.options import MMAGIC_MODEL

OPTION_NAMES = {'pruning': 'model.pruning', 'total_iters': 'train_cfg.max_iters', 'tf': 'model.tf_loss',
                'fix_flow': 'model.train_cfg.fix_iter'}


@MODELS.register_module()
class SSLPruningVSR(BasicVSR):
    """MMagic BasicVSR model whose generator is pruned while it trains (driven by ``SSLPruningHook``).

    Args:
        pruning: the ``pruning`` section (see ``ssl_plugin.pruning.pruner.PruningConfig``).
        tf_loss: optional Temporal Finetuning loss config, used after pruning.
        Other arguments: as MMagic's ``BasicVSR`` (``train_cfg.fix_iter`` is not supported: SpyNet is frozen
        while regularising by ``pruning.freeze_flow``).
    """

    def __init__(self, generator, pixel_loss, pruning=None, tf_loss=None, **kwargs):
        check_keys('model', kwargs, {*parameter_names(BasicVSR.__init__), *parameter_names(SSLPruningVSR.__init__)})
        MMAGIC_MODEL.check({'tf_loss': tf_loss}, 'model')
        SSLPruningLifecycle.check_options(pruning, None, uses_tf=bool(tf_loss),
                                          fixes_flow=bool((kwargs.get('train_cfg') or {}).get('fix_iter')),
                                          names=OPTION_NAMES)
        super().__init__(generator=generator, pixel_loss=pixel_loss, **kwargs)
        self.pruning = pruning
        self.tf_loss = MODELS.build(tf_loss) if tf_loss else None
        self.lifecycle: SSLPruningLifecycle | None = None  # set by SSLPruningHook when the run starts
        self.current_iter: int | None = None  # set by SSLPruningHook before every training iteration

    def forward_train(self, inputs, data_samples=None, **kwargs):
        if self.lifecycle is None or self.current_iter is None:
            raise RuntimeError('SSLPruningVSR needs custom_hooks=[dict(type="SSLPruningHook")] in the config.')
        _, losses, scalars = self.lifecycle.losses(self.generator, inputs, data_samples.gt_img, self.pixel_loss,
                                                   self.current_iter)
        return {f'loss_{name}': value for name, value in losses.items()} | scalars
