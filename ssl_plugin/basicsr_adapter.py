"""BasicSR adapter: ``model_type: SSLPruningModel`` runs load → regularise → prune → fine-tune in one BasicSR run.

Options (on top of a VideoRecurrentModel experiment whose ``network_g`` is ``SSLBasicVSR``)::

    pruning: {method: ssl, ratio: 0.5, round_to: ~, regularization: {delta: 1.0e-4, tau: 0.1, t1: 5, t2: 3375}}
    train:
      tf_opt: {type: TemporalFinetuneLoss, loss_weight: 1.0}   # optional, fine-tuning phase only
      total_iter: <regularisation iterations + fine-tuning iterations>

During regularisation the learning rate is held constant and SpyNet is frozen (``pruning.freeze_flow``); at the
prune iteration the network (and its EMA) is replaced by the compact one and the optimizer and schedulers are
rebuilt, so ``train.scheduler`` describes the fine-tuning schedule. Checkpoints carry the pruning plan in the
network state dict; ``<experiments>/models/pruning_start.pth`` keeps the pretrained network for the Temporal
Finetuning teacher across resumes.
"""
from __future__ import annotations

import copy
import os.path as osp
from collections import OrderedDict

import torch
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.models.video_recurrent_model import VideoRecurrentModel
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY

from effsr_core.options_check import OptionError
from ssl_plugin.pruning.curve import FactorCurve
from ssl_plugin.pruning.pruner import PruningConfig, StructuredPruner, broadcast_plan

TEACHER_FILE = 'pruning_start.pth'


@MODEL_REGISTRY.register()
class SSLPruningModel(VideoRecurrentModel):
    """VideoRecurrentModel that prunes its network with SSL (or the L1-norm / ASSL baselines) while training."""

    @classmethod
    def check_options(cls, opt: dict) -> None:
        try:
            config = PruningConfig.from_options(opt.get('pruning'))
        except (TypeError, ValueError) as error:
            raise OptionError(str(error)) from error
        train = opt.get('train') or {}
        if opt.get('is_train', True) and train:
            total = train.get('total_iter', 0)
            if total < config.prune_iter:
                raise OptionError(f'train.total_iter ({total}) must exceed the {config.prune_iter - 1} regularisation '
                                  f'iterations of pruning.regularization, leaving iterations to fine-tune.')
            if train.get('fix_flow'):
                raise OptionError('train.fix_flow is not supported by SSLPruningModel: SpyNet is frozen during '
                                  'regularisation by pruning.freeze_flow and trained during fine-tuning.')
            if train.get('tf_opt') and 'hidden' in config.units:
                raise OptionError('train.tf_opt: Temporal Finetuning needs full-width hidden states; pruning.units '
                                  'contains "hidden" (ASSL aligned pruning). Remove tf_opt or the hidden unit.')

    def __init__(self, opt):
        self.pruning = PruningConfig.from_options(opt.get('pruning'))
        self.pruner = StructuredPruner(self.pruning)
        self._train_opt = copy.deepcopy(opt.get('train'))  # BasicSR pops keys from it while building
        self._teacher = None
        super().__init__(opt)

    # ---------------------------------------------------------------------------------------- set-up
    def init_training_settings(self):
        net = self.get_bare_model(self.net_g)
        if not hasattr(net, 'pending_plan'):
            raise OptionError(f'network_g.type: {type(net).__name__} has no pruning interface; use SSLBasicVSR.')
        fresh_start = net.plan is None and net.pending_plan is None
        if fresh_start:
            net.pending_plan = broadcast_plan(self.pruner.select(net))
            self._log_plan('selected for pruning', net, net.pending_plan)
        self.cri_tf = build_loss(self._train_opt['tf_opt']).to(self.device) if self._train_opt.get('tf_opt') else None
        if self.cri_tf is not None and fresh_start:
            self._teacher = self._frozen(copy.deepcopy(net))
            self._save_teacher(self._teacher)
        if net.plan is None and self.pruning.freeze_flow and self.pruning.regularize:
            net.spynet.requires_grad_(False)
            self.net_g = self.model_to_device(net)  # re-wrap: DDP must see the frozen parameters
        self.curve = FactorCurve(osp.join(self.opt['path']['experiments_root'], 'pruning_factors.csv'))
        super().init_training_settings()

    @staticmethod
    def _frozen(net):
        net.eval()
        net.requires_grad_(False)
        return net

    def _teacher_path(self) -> str:
        return osp.join(self.opt['path']['models'], TEACHER_FILE)

    @master_only
    def _save_teacher(self, teacher) -> None:
        torch.save({'params': teacher.state_dict()}, self._teacher_path())

    def teacher(self):
        """The frozen pretrained network (Temporal Finetuning reference), reloaded from disk after a resume."""
        if self._teacher is None:
            path = self._teacher_path()
            if not osp.isfile(path):
                raise FileNotFoundError(f'Temporal Finetuning needs the pretrained network saved at {path} at the '
                                        'start of this experiment; it is missing (remove train.tf_opt or restart).')
            teacher = build_network(copy.deepcopy(self.opt['network_g']))
            teacher.load_state_dict(torch.load(path, map_location='cpu', weights_only=True)['params'])
            self._teacher = self._frozen(teacher.to(self.device))
        return self._teacher

    def _log_plan(self, what: str, net, plan) -> None:
        sizes = self.pruner.groups(net)
        get_root_logger().info(f'SSL {self.pruning.method}: {what}: keep {plan.kept_fraction(sizes):.3f} of '
                               f'{sum(sizes.values())} units in {len(sizes)} groups '
                               f'(ratio {self.pruning.ratio}, {self.pruning.selection}, round_to {self.pruning.round_to}).')

    def setup_optimizers(self):
        """Adam over three groups: the rest, SpyNet (``train.flow_lr_mul``) and, while the network is dense, the
        scaling factors (``train.factor_lr_mul``, default 1: Adam moves a factor by about one learning rate per
        step, so short demo schedules raise it to let the regularised factors actually reach zero)."""
        train_opt = self.opt['train']
        base_lr = train_opt['optim_g']['lr']
        multipliers = {'flow': train_opt.get('flow_lr_mul', 1), 'factor': train_opt.get('factor_lr_mul', 1)}
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
        if self.pruning.phase(current_iter, self.get_bare_model(self.net_g)) == 'finetune':
            prune_iter = self.pruning.prune_iter
            super().update_learning_rate(current_iter - prune_iter + 1 if current_iter >= prune_iter else current_iter,
                                         warmup_iter)

    def _prune(self) -> None:
        net = self.get_bare_model(self.net_g)
        plan = net.pending_plan
        compact = self.pruner.prune(net, plan)
        compact.spynet.requires_grad_(True)
        self.net_g = self.model_to_device(compact)
        self.net_g.train()
        if hasattr(self, 'net_g_ema'):
            self.net_g_ema = self.pruner.prune(self.get_bare_model(self.net_g_ema), plan).eval()
        self.opt['train'] = copy.deepcopy(self._train_opt)
        self.optimizers, self.schedulers = [], []
        self.setup_optimizers()
        self.setup_schedulers()
        self.curve.save_plot()
        self._log_plan('pruned', net, plan)
        self.print_network(self.net_g)

    def optimize_parameters(self, current_iter):
        net = self.get_bare_model(self.net_g)
        phase = self.pruning.phase(current_iter, net)
        if phase == 'finetune' and net.plan is None:
            self._prune()
            net = self.get_bare_model(self.net_g)
        self.optimizer_g.zero_grad()
        use_tf = phase == 'finetune' and self.cri_tf is not None
        if use_tf:
            self.output, hidden = self.net_g(self.lq, return_hidden=True)
        else:
            self.output = self.net_g(self.lq)
        losses = OrderedDict()
        losses['l_pix'] = self.cri_pix(self.output, self.gt)
        if use_tf:
            with torch.no_grad():
                _, teacher_hidden = self.teacher()(self.lq, return_hidden=True)
            losses['l_tf'] = self.cri_tf(hidden, teacher_hidden)
        if phase == 'regularize':
            losses['l_sir'] = self.pruner.regularization_loss(net, net.pending_plan, current_iter)
        sum(losses.values()).backward()
        self.optimizer_g.step()
        if phase == 'regularize':
            means = self.pruner.factor_means(net, net.pending_plan)
            alpha = self.pruning.regularization.alpha(current_iter - 1)
            losses.update(gamma_pruned=torch.tensor(means['pruned']), gamma_kept=torch.tensor(means['kept']),
                          alpha=torch.tensor(alpha))
            if current_iter % self.opt['logger']['print_freq'] == 0 or current_iter == 1:
                self.curve.record(current_iter, alpha, means['pruned'], means['kept'])
        self.log_dict = self.reduce_loss_dict(losses)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)
