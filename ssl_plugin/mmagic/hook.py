"""MMagic hook ``SSLPruningHook``: runs SSL's lifecycle (``ssl_plugin.lifecycle``) in mmengine's runner.

What the hook adds to the lifecycle: the LR is held (no param scheduler) while regularising; at the prune
iteration the compact generator is swapped in and the optimizer wrapper, param schedulers, DDP wrapper and EMA
model are rebuilt; after a resume the same objects are rebuilt before the checkpoint's weights and optimizer state
are loaded.
"""
from __future__ import annotations

import copy
import os.path as osp

from mmengine.hooks import EMAHook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner

from effsr_core.checkpoints import load_weights
from effsr_core.mmagic.check_hook import ConfigCheckHook
from effsr_core.options import OptionError
from mmagic.registry import HOOKS
from ssl_plugin.archs.checkpoint_mapping import EXTRA_STATE
from ssl_plugin.lifecycle import CURVE_FILE, TEACHER_FILE, SSLPruningLifecycle
from ssl_plugin.mmagic.model import OPTION_NAMES, SSLPruningVSR
from ssl_plugin.options import MMAGIC_HOOK
from ssl_plugin.pruning.config import PruningConfig
from ssl_plugin.pruning.plan import PruningPlan, decode_state

REGULARISATION_SCALARS = ('loss_sir', 'gamma_pruned', 'gamma_kept', 'alpha')


def check_finetune_periods(schedulers, max_iters: int, regularisation_iters: int) -> None:
    """The param schedulers start at the prune iteration, so the ``periods`` of an iteration-based restart schedule
    must add up to the fine-tuning iterations: a ``max_iters`` changed without them would cut the cosine short or
    leave it ended early, silently."""
    finetune = max_iters - regularisation_iters
    for index, scheduler in enumerate(schedulers if isinstance(schedulers, (list, tuple)) else [schedulers]):
        periods = (scheduler or {}).get('periods')
        if periods is None or scheduler.get('by_epoch', True) or scheduler.get('end') is not None:
            continue
        if sum(periods) != finetune:
            where = 'param_scheduler' if not isinstance(schedulers, (list, tuple)) else f'param_scheduler[{index}]'
            raise OptionError(f'{where}.periods: {list(periods)} add up to {sum(periods)}, but the schedule runs the '
                              f'{finetune} fine-tuning iterations (train_cfg.max_iters {max_iters} - '
                              f'{regularisation_iters} regularising); scale the periods with max_iters.')


@HOOKS.register_module()
class SSLPruningHook(ConfigCheckHook):
    """Drives the pruning phases of an ``SSLPruningVSR`` model inside MMagic's runner (the config is checked in
    ``before_run`` by ``ConfigCheckHook``).

    Args:
        curve_interval: record the mean scaling factors every this many iterations (CSV + PNG in work_dir).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, curve_interval: int = MMAGIC_HOOK['curve_interval'].default):
        self.curve_interval = MMAGIC_HOOK.check({'curve_interval': curve_interval}, 'SSLPruningHook')['curve_interval']

    @staticmethod
    def _model(runner: Runner) -> SSLPruningVSR:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not isinstance(model, SSLPruningVSR):
            raise TypeError(f'SSLPruningHook needs model.type="SSLPruningVSR", got {type(model).__name__}.')
        return model

    def _lifecycle(self, runner: Runner) -> SSLPruningLifecycle:
        model = self._model(runner)
        if model.lifecycle is None:
            model.lifecycle = SSLPruningLifecycle(
                model.pruning, teacher_path=osp.join(runner.work_dir, TEACHER_FILE),
                curve_path=osp.join(runner.work_dir, CURVE_FILE), tf_loss=model.tf_loss, log=runner.logger.info)
        return model.lifecycle

    # ------------------------------------------------------------------------------------ run start
    def before_train(self, runner: Runner) -> None:
        """Before the first iteration: refuse a ``max_iters`` that ends before pruning (the run would finish
        "successfully" without pruning), then start the lifecycle."""
        model = self._model(runner)
        SSLPruningLifecycle.check_options(model.pruning, runner.max_iters, uses_tf=model.tf_loss is not None,
                                          fixes_flow=False, names=OPTION_NAMES)
        check_finetune_periods(runner.cfg.get('param_scheduler'), runner.max_iters,
                               PruningConfig.from_options(model.pruning, OPTION_NAMES['pruning']).prune_iter - 1)
        if self._lifecycle(runner).start(self._model(runner).generator, next_iteration=runner.iter + 1):
            runner.param_schedulers = []  # constant LR while regularising

    # ------------------------------------------------------------------------------------ iterations
    def before_train_iter(self, runner: Runner, batch_idx: int, data_batch=None) -> None:
        model, lifecycle = self._model(runner), self._lifecycle(runner)
        model.current_iter = runner.iter + 1
        if lifecycle.needs_pruning(model.current_iter, model.generator):
            model.generator, = lifecycle.prune(model.generator)
            self._rebuild_training_objects(runner, schedulers=True)
            # mmengine's MessageHub has no removal method; without this the logger repeats their last values.
            for name in REGULARISATION_SCALARS:
                runner.message_hub.log_scalars.pop(f'train/{name}', None)

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._lifecycle(runner).after_step(self._model(runner).generator, runner.iter + 1, self.curve_interval)

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
            load_weights(model.generator,  # the generator rebuilds itself for the incoming plan
                         {k[len('generator.'):]: v for k, v in checkpoint['state_dict'].items()
                          if k.startswith('generator.')})
            self._rebuild_training_objects(runner, schedulers=plan is not None)

    def _rebuild_training_objects(self, runner: Runner, schedulers: bool) -> None:
        model = self._model(runner)
        if is_model_wrapper(runner.model):  # DDP holds the old parameters
            runner.model = runner.wrap_model(runner.cfg.get('model_wrapper_cfg'), model)
        if not isinstance(getattr(runner, 'optim_wrapper', None), OptimWrapper):
            return  # not training (test / val): nothing else to rebuild
        runner.optim_wrapper = runner.build_optim_wrapper(copy.deepcopy(runner.cfg.optim_wrapper))
        runner.scale_lr(runner.optim_wrapper, runner.auto_scale_lr)
        runner.optim_wrapper.initialize_count_status(runner.model, runner.iter, runner.max_iters)
        runner.param_schedulers = (runner.build_param_scheduler(copy.deepcopy(runner.cfg.param_scheduler))
                                   if schedulers and runner.cfg.get('param_scheduler') else [])
        for hook in runner.hooks:
            if isinstance(hook, EMAHook):
                hook.before_run(runner)  # a fresh average of the new parameters
