"""``model_type: SSLPruningModel``: SSL's lifecycle (``ssl_plugin.lifecycle``) inside BasicSR's training loop.

Options (on top of a VideoRecurrentModel experiment whose ``network_g`` is ``SSLBasicVSR``)::

    pruning: {method: ssl, ratio: 0.5, round_to: ~, regularization: {delta: 1.0e-4, tau: 0.1, t1: 5, t2: 3375}}
    train:
      tf_opt: {type: TemporalFinetuneLoss, loss_weight: 1.0}   # optional, fine-tuning phase only
      total_iter: <regularisation iterations + fine-tuning iterations>

What this adapter adds to the lifecycle: the LR is held while regularising and ``train.scheduler`` restarts at
the prune iteration; at that iteration the network and its EMA are swapped for the compact ones and the optimizer
and schedulers rebuilt. The teacher is kept in ``<experiments>/models/pruning_start.pth``.
"""
from __future__ import annotations

import copy
import os.path as osp
from collections import OrderedDict
from functools import partial

from basicsr.losses import build_loss
from basicsr.models.video_recurrent_model import VideoRecurrentModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import ARCH_REGISTRY, MODEL_REGISTRY

from effsr_core.basicsr.plugin_model import PluginModel
from effsr_core.basicsr.schedulers import RegisteredSchedulers
from effsr_core.options import OptionError
from ssl_plugin.lifecycle import CURVE_FILE, TEACHER_FILE, SSLPruningLifecycle
from ssl_plugin.options import BASICSR_TRAIN, PRUNING
from ssl_plugin.pruning.interface import PrunableNetwork
from ssl_plugin.pruning.config import PruningConfig

OPTION_NAMES = {'pruning': 'pruning', 'total_iters': 'train.total_iter', 'tf': 'train.tf_opt',
                'fix_flow': 'train.fix_flow'}


def _dense_network(network_options: dict):
    """The network ``network_g`` names, built with its own weights left out (their values do not change a
    latency)."""
    arguments = {name: value for name, value in network_options.items() if name not in ('type', 'pretrained')}
    return ARCH_REGISTRY.get(network_options['type'])(**arguments)


@MODEL_REGISTRY.register()
class SSLPruningModel(PluginModel, RegisteredSchedulers, VideoRecurrentModel):
    """VideoRecurrentModel that prunes its network with SSL (or the L1-norm / ASSL baselines) while training."""

    option_sections = (PRUNING,)
    train_options = BASICSR_TRAIN

    @classmethod
    def check_options(cls, opt: dict, check_paths: bool = True) -> None:
        train = opt.get('train') or {}
        is_train = opt.get('is_train', True) and bool(train)
        SSLPruningLifecycle.check_options(
            opt.get('pruning'), train.get('total_iter', 0) if is_train else None,
            uses_tf=is_train and bool(train.get('tf_opt')), fixes_flow=is_train and bool(train.get('fix_flow')),
            names=OPTION_NAMES, network=partial(_dense_network, opt['network_g']) if check_paths and is_train else None)

    @classmethod
    def schedule_offset(cls, opt: dict) -> int:
        """``train.scheduler`` starts with fine-tuning: after the regularisation iterations."""
        return PruningConfig.from_options(opt.get('pruning')).prune_iter - 1

    def __init__(self, opt):
        self._train_opt = copy.deepcopy(opt.get('train'))  # BasicSR pops keys from it while building
        self.lifecycle = None
        super().__init__(opt)

    # ---------------------------------------------------------------------------------------- set-up
    def init_training_settings(self):
        net = self.get_bare_model(self.net_g)
        if not isinstance(net, PrunableNetwork):
            raise OptionError(f'network_g.type: {type(net).__name__} has no pruning interface; use SSLBasicVSR.')
        tf_opt = self._train_opt.get('tf_opt')
        path = self.opt['path']
        self.lifecycle = SSLPruningLifecycle(
            self.opt.get('pruning'), teacher_path=osp.join(path['models'], TEACHER_FILE),
            curve_path=osp.join(path['experiments_root'], CURVE_FILE), log=get_root_logger().info,
            tf_loss=build_loss(copy.deepcopy(tf_opt)).to(self.device) if tf_opt else None)
        if self.lifecycle.start(net):
            self.net_g = self.model_to_device(net)  # re-wrap: DDP must see the frozen SpyNet
        super().init_training_settings()

    def setup_optimizers(self):
        """Adam over three groups: the rest, SpyNet (``train.flow_lr_mul``) and, while the network is dense, the
        scaling factors (``train.factor_lr_mul``, default 1: Adam moves a factor by about one learning rate per
        step, so short demo schedules raise it to let the regularised factors actually reach zero)."""
        train_opt = self.opt['train']
        base_lr = train_opt['optim_g']['lr']
        multipliers = {'flow': train_opt.get('flow_lr_mul', 1),
                       'factor': train_opt.get('factor_lr_mul', BASICSR_TRAIN['factor_lr_mul'].default)}
        groups = {'rest': [], 'flow': [], 'factor': []}
        for name, param in self.net_g.named_parameters():
            kind = 'flow' if 'spynet' in name else 'factor' if name.endswith('_scale') else 'rest'
            groups[kind].append(param)
        optim_params = [{'params': groups['rest'], 'lr': base_lr}] + [
            {'params': groups[kind], 'lr': base_lr * multipliers[kind]} for kind in ('flow', 'factor') if groups[kind]]
        optim_opt = dict(train_opt['optim_g'])
        optim_type = optim_opt.pop('type')
        self.optimizer_g = self.get_optimizer(optim_type, optim_params, **optim_opt)
        self.optimizers.append(self.optimizer_g)

    # ---------------------------------------------------------------------------------------- phases
    def update_learning_rate(self, current_iter, warmup_iter=-1):
        """Constant LR while regularising; the configured schedule restarts with fine-tuning (or runs from the
        first iteration when a compact checkpoint is the starting point)."""
        if self.lifecycle.phase(current_iter, self.get_bare_model(self.net_g)) == 'finetune':
            prune_iter = self.lifecycle.config.prune_iter
            super().update_learning_rate(current_iter - prune_iter + 1 if current_iter >= prune_iter else current_iter,
                                         warmup_iter)

    def _prune(self) -> None:
        twins = (self.get_bare_model(self.net_g_ema),) if hasattr(self, 'net_g_ema') else ()
        compact, *compact_twins = self.lifecycle.prune(self.get_bare_model(self.net_g), twins)
        self.net_g = self.model_to_device(compact)
        self.net_g.train()
        if compact_twins:
            self.net_g_ema = compact_twins[0].eval()
        self.opt['train'] = copy.deepcopy(self._train_opt)
        self.optimizers, self.schedulers = [], []
        self.setup_optimizers()
        self.setup_schedulers()
        self.print_network(self.net_g)

    def optimize_parameters(self, current_iter):
        if self.lifecycle.needs_pruning(current_iter, self.get_bare_model(self.net_g)):
            self._prune()
        self.optimizer_g.zero_grad()
        self.output, losses, scalars = self.lifecycle.losses(self.get_bare_model(self.net_g), self.lq, self.gt,
                                                             self.cri_pix, current_iter, forward=self.net_g)
        sum(losses.values()).backward()
        self.optimizer_g.step()
        self.lifecycle.after_step(self.get_bare_model(self.net_g), current_iter, self.opt['logger']['print_freq'])
        self.log_dict = self.reduce_loss_dict(OrderedDict(
            [(f'l_{name}', value) for name, value in losses.items()] + list(scalars.items())))
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)
