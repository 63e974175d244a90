"""MMagic adapter: model ``SSLPruningVSR`` + hook ``SSLPruningHook`` run load → regularise → prune → fine-tune.

Config sketch (see ``options/mmagic/ssl/``)::

    custom_imports = dict(imports=['effsr_core.frameworks.mmagic_plugins'], allow_failed_imports=False)
    model = dict(type='SSLPruningVSR', generator=dict(type='SSLBasicVSR', ...),
                 pixel_loss=dict(type='CharbonnierLoss'), tf_loss=dict(type='TemporalFinetuneLoss'),
                 pruning=dict(method='ssl', ratio=0.5, regularization=dict(t1=5, t2=3375)), ...)
    custom_hooks = [dict(type='SSLPruningHook')]
    load_from = 'basicvsr_reds4.pth'   # MMagic BasicVSR (or BasicSR / our) weights; mapped on load
    param_scheduler = ...              # the FINE-TUNING schedule: it starts at the prune iteration

The hook owns everything that needs the runner: selecting units, freezing SpyNet and holding the learning rate
(no parameter scheduler) while regularising, and, at the prune iteration, swapping in the compact generator and
rebuilding the optimizer wrapper, the parameter schedulers, the DDP wrapper and mmengine's EMA model. After a
resume it rebuilds the same objects before the checkpoint's weights and optimizer state are loaded.
"""
from __future__ import annotations

import copy
import os.path as osp

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner

from mmagic.models.editors.basicvsr import BasicVSR
from mmagic.registry import HOOKS, MODELS
from ssl_plugin.archs.checkpoint_mapping import EXTRA_STATE
from ssl_plugin.pruning.curve import FactorCurve
from ssl_plugin.pruning.plan import PruningPlan, decode_state
from ssl_plugin.pruning.pruner import PruningConfig, StructuredPruner, broadcast_plan

TEACHER_FILE = 'pruning_start.pth'
REGULARISATION_SCALARS = ('loss_sir', 'gamma_pruned', 'gamma_kept', 'alpha')


class _Frozen:
    """Holds the teacher outside the module tree (no optimizer, no state dict, no DDP)."""

    def __init__(self, module):
        self.module = module.eval().requires_grad_(False)


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
        if (kwargs.get('train_cfg') or {}).get('fix_iter'):
            raise ValueError('model.train_cfg.fix_iter is not supported by SSLPruningVSR; SpyNet is frozen while '
                             'regularising (model.pruning.freeze_flow) and trained while fine-tuning.')
        super().__init__(generator=generator, pixel_loss=pixel_loss, **kwargs)
        self.pruning = PruningConfig.from_options(pruning)
        self.pruner = StructuredPruner(self.pruning)
        self.tf_loss = MODELS.build(tf_loss) if tf_loss else None
        if self.tf_loss is not None and 'hidden' in self.pruning.units:
            raise ValueError('model.tf_loss needs full-width hidden states; model.pruning.units contains "hidden".')
        self.current_iter: int | None = None  # set by SSLPruningHook before every training iteration
        self.teacher: _Frozen | None = None

    def forward_train(self, inputs, data_samples=None, **kwargs):
        if self.current_iter is None:
            raise RuntimeError('SSLPruningVSR needs custom_hooks=[dict(type="SSLPruningHook")] in the config.')
        phase = self.pruning.phase(self.current_iter, self.generator)
        use_tf = phase == 'finetune' and self.tf_loss is not None
        gt = data_samples.gt_img
        if use_tf:
            output, hidden = self.generator(inputs, return_hidden=True)
        else:
            output = self.generator(inputs)
        losses = dict(loss_pix=self.pixel_loss(output, gt))
        if use_tf:
            with torch.no_grad():
                _, teacher_hidden = self.teacher.module(inputs, return_hidden=True)
            losses['loss_tf'] = self.tf_loss(hidden, teacher_hidden)
        if phase == 'regularize':
            plan = self.generator.pending_plan
            losses['loss_sir'] = self.pruner.regularization_loss(self.generator, plan, self.current_iter)
            means = self.pruner.factor_means(self.generator, plan)
            losses.update(gamma_pruned=torch.tensor(means['pruned']), gamma_kept=torch.tensor(means['kept']),
                          alpha=torch.tensor(self.pruning.regularization.alpha(self.current_iter - 1)))
        return losses


@HOOKS.register_module()
class SSLPruningHook(Hook):
    """Drives the pruning phases of an ``SSLPruningVSR`` model inside MMagic's runner.

    Args:
        curve_interval: record the mean scaling factors every this many iterations (CSV + PNG in work_dir).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, curve_interval: int = 50):
        self.curve_interval = curve_interval

    @staticmethod
    def _model(runner: Runner) -> SSLPruningVSR:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not isinstance(model, SSLPruningVSR):
            raise TypeError(f'SSLPruningHook needs model.type="SSLPruningVSR", got {type(model).__name__}.')
        return model

    def _teacher_path(self, runner: Runner) -> str:
        return osp.join(runner.work_dir, TEACHER_FILE)

    # ------------------------------------------------------------------------------------ run start
    def before_train(self, runner: Runner) -> None:
        model = self._model(runner)
        generator = model.generator
        self.curve = FactorCurve(osp.join(runner.work_dir, 'pruning_factors.csv'))
        if generator.plan is None and generator.pending_plan is None:
            generator.pending_plan = broadcast_plan(model.pruner.select(generator))
            if model.tf_loss is not None:
                model.teacher = _Frozen(copy.deepcopy(generator))
                if runner.rank == 0:
                    torch.save({'params': model.teacher.module.state_dict()}, self._teacher_path(runner))
            runner.logger.info(f'SSL {model.pruning.method}: selected units to prune, keeping '
                               f'{generator.pending_plan.kept_fraction(model.pruner.groups(generator)):.3f}.')
        if model.tf_loss is not None and model.teacher is None:
            model.teacher = _Frozen(self._load_teacher(runner, generator))
        if model.pruning.phase(runner.iter + 1, generator) == 'regularize':
            if model.pruning.freeze_flow:
                generator.spynet.requires_grad_(False)
            runner.param_schedulers = []  # constant LR while regularising

    def _load_teacher(self, runner: Runner, generator):
        path = self._teacher_path(runner)
        if not osp.isfile(path):
            raise FileNotFoundError(f'Temporal Finetuning needs the pretrained generator saved at {path} when this '
                                    'experiment started; it is missing.')
        teacher = type(generator)(**generator.config).to(next(generator.parameters()).device)
        teacher.load_state_dict(torch.load(path, map_location='cpu', weights_only=True)['params'])
        return teacher

    # ------------------------------------------------------------------------------------ iterations
    def before_train_iter(self, runner: Runner, batch_idx: int, data_batch=None) -> None:
        model = self._model(runner)
        model.current_iter = runner.iter + 1
        if model.pruning.phase(model.current_iter) == 'finetune' and model.generator.plan is None:
            plan = model.generator.pending_plan
            model.generator = model.pruner.prune(model.generator, plan)
            model.generator.spynet.requires_grad_(True)
            self._rebuild_training_objects(runner, schedulers=True)
            for name in REGULARISATION_SCALARS:  # stop the logger from repeating their last values
                runner.message_hub.log_scalars.pop(f'train/{name}', None)
            self.curve.save_plot()
            runner.logger.info(f'SSL {model.pruning.method}: pruned at iteration {model.current_iter}; generator '
                               f'has {sum(p.numel() for p in model.generator.parameters()):,} parameters.')

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        model = self._model(runner)
        it = runner.iter + 1
        if model.pruning.phase(it, model.generator) == 'regularize' and (it % self.curve_interval == 0 or it == 1):
            means = model.pruner.factor_means(model.generator, model.generator.pending_plan)
            self.curve.record(it, model.pruning.regularization.alpha(it - 1), means['pruned'], means['kept'])

    # ------------------------------------------------------------------------------------ checkpoints
    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """Give the generator the checkpoint's structure before its weights and optimizer state are loaded."""
        model = self._model(runner)
        extra = checkpoint.get('state_dict', {}).get(f'generator.{EXTRA_STATE}')
        if extra is None:
            return
        extra = decode_state(extra)
        plan = None if extra.get('plan') is None else PruningPlan.coerce(extra['plan'])
        if plan != model.generator.plan:
            model.generator.load_state_dict(  # the generator rebuilds itself for the incoming plan
                {k[len('generator.'):]: v for k, v in checkpoint['state_dict'].items() if k.startswith('generator.')})
            self._rebuild_training_objects(runner, schedulers=plan is not None)

    def _rebuild_training_objects(self, runner: Runner, schedulers: bool) -> None:
        model = self._model(runner)
        if is_model_wrapper(runner.model):  # DDP holds the old parameters
            runner.model = runner.wrap_model(runner.cfg.get('model_wrapper_cfg'), model)
        if not isinstance(getattr(runner, 'optim_wrapper', None), OptimWrapper):
            return  # not training (test / val): nothing else to rebuild
        runner.optim_wrapper = runner.build_optim_wrapper(copy.deepcopy(runner.cfg.optim_wrapper))
        runner.scale_lr(runner.optim_wrapper, runner.auto_scale_lr)
        if hasattr(runner, '_train_loop') and not isinstance(runner._train_loop, dict):
            runner.optim_wrapper.initialize_count_status(runner.model, runner.iter, runner.max_iters)
        runner.param_schedulers = (runner.build_param_scheduler(copy.deepcopy(runner.cfg.param_scheduler))
                                   if schedulers and runner.cfg.get('param_scheduler') else [])
        for hook in runner.hooks:
            if type(hook).__name__ == 'EMAHook':
                hook.before_run(runner)  # a fresh average of the new parameters
