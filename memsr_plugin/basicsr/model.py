"""``model_type: MemSRDistillModel``: MemSR's initialisation-aware distillation (``memsr_plugin.distillation``)
inside BasicSR's training loop.

Options (an SRModel experiment whose ``network_g`` is the plain student)::

    network_g: {type: PlainConvSR, ...}              # the student, as the initialisation file describes it
    network_t: {type: EDSR, ...}                     # the teacher: frozen, never saved
    path:
      pretrain_network_g: init.pth                   # the winning initialisation (its 'params')
      pretrain_network_t: edsr.pth                   # kept on resume (network_t is a frozen network)
    distill: {loss_weight: 0.3, epsilon: 1.0e-5, init_file: init.pth}

What this adapter adds to the lifecycle: the adapters train with the student in one optimizer and are saved in the
student's ``net_g_*.pth`` under ``distill_adapters`` (``params`` stays the plain student, so testing needs only
``network_g``); a resume reloads them from there and rebuilds the teacher from ``path.pretrain_network_t``.

``model_type: MemSRTeacherModel`` is BasicSR's SRModel that also takes the registered LR schedulers, so a teacher
trains with the students' one-cycle LR (``PyTorchOneCycleLR``, Sec. 4.1); its checkpoints are SRModel's.
"""
from __future__ import annotations

import copy
import os.path as osp
from collections import OrderedDict

from basicsr.archs import build_network
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from effsr_core.basicsr.build import build_network as build_structure
from effsr_core.basicsr.plugin_model import PluginModel
from effsr_core.basicsr.schedulers import RegisteredSchedulers
from effsr_core.options import OptionError, OptionSection
from memsr_plugin.distillation import ADAPTERS_KEY, DistillationInit, MemSRDistillation
from memsr_plugin.options import DISTILL

OPTION_NAMES = {'init_file': 'distill.init_file', 'student': 'network_g', 'teacher': 'network_t'}


def _check_one_cycle_steps(train: dict) -> None:
    """PyTorch's one-cycle schedule raises at the step after its last: it must cover every iteration."""
    scheduler = train.get('scheduler') or {}
    if scheduler.get('type') == 'PyTorchOneCycleLR' and scheduler.get('total_steps', 0) < train['total_iter']:
        raise OptionError(f'train.scheduler.total_steps: {scheduler.get("total_steps")} is below '
                          f'train.total_iter ({train["total_iter"]}); the one-cycle schedule needs one step per '
                          'iteration.')


@MODEL_REGISTRY.register()
class MemSRTeacherModel(PluginModel, RegisteredSchedulers, SRModel):
    """BasicSR's SRModel with the registered LR schedulers: MemSR's teachers train with the one-cycle LR."""

    train_options = OptionSection('train', 'MemSRTeacherModel reads only SRModel\'s train keys', ())

    @classmethod
    def check_options(cls, opt: dict, check_paths: bool = True) -> None:
        train = opt.get('train') or {}
        if opt.get('is_train', True) and train:
            _check_one_cycle_steps(train)


@MODEL_REGISTRY.register()
class MemSRDistillModel(PluginModel, RegisteredSchedulers, SRModel):
    """SRModel whose plain student learns from a frozen teacher's plain form through trainable adapters (Eq. 14)."""

    option_sections = (DISTILL,)
    train_options = OptionSection('train', 'MemSR reads only SRModel\'s train keys', ())
    frozen_networks = ('network_t',)  # never saved: effsr_core keeps path.pretrain_network_t on resume

    @classmethod
    def check_options(cls, opt: dict, check_paths: bool = True) -> None:
        """Refuse a run that cannot work before anything is written: no teacher, no pixel loss, a perceptual loss
        (not used), and (reading the files) an initialisation whose adapters do not fit student and teacher."""
        train = opt.get('train') or {}
        if not (opt.get('is_train', True) and train):
            return
        distill = DISTILL.check(opt.get('distill'), 'distill')
        if not isinstance(opt.get('network_t'), dict):
            raise OptionError('network_t: the teacher network is required, e.g. {type: EDSR, num_feat: 64, ...}.')
        if not (opt.get('path') or {}).get('pretrain_network_t'):
            raise OptionError('path.pretrain_network_t: the teacher\'s trained weights are required.')
        if not train.get('pixel_opt'):
            raise OptionError('train.pixel_opt: the task loss of Eq. 13 is required, e.g. {type: L1Loss}.')
        if train.get('perceptual_opt'):
            raise OptionError('train.perceptual_opt: not used by MemSRDistillModel; remove it.')
        _check_one_cycle_steps(train)
        if check_paths:
            init = DistillationInit.read(distill['init_file'], OPTION_NAMES['init_file'])
            # random weights: only the structures are checked (effsr_core's builder, which logs nothing: BasicSR's
            # log line would set up its root logger before the run does, and the run would then log nothing)
            teacher = init.plain_teacher(build_structure(opt['network_t']), OPTION_NAMES)
            init.check_widths(build_structure(opt['network_g']), teacher, OPTION_NAMES)

    # ---------------------------------------------------------------------------------------- set-up
    def init_training_settings(self):
        distill = DISTILL.check(self.opt.get('distill'), 'distill')
        path = self.opt['path']
        teacher_path = path['pretrain_network_t']
        if path.get('resume_state') and not osp.isfile(teacher_path) and \
                osp.basename(teacher_path).startswith('net_t_'):
            raise OptionError(f'path.pretrain_network_t: BasicSR\'s resume pointed it to {teacher_path}, which is '
                              'never written; list network_t in path.ignore_resume_networks (effsr_core.train '
                              'does it for you).')
        teacher = build_network(copy.deepcopy(self.opt['network_t']))
        self.load_network(teacher, teacher_path, path.get('strict_load_t', True),
                          path.get('param_key_t', 'params'))
        self.distillation = MemSRDistillation(
            DistillationInit.read(distill['init_file'], OPTION_NAMES['init_file']), teacher,
            self.get_bare_model(self.net_g), distill['loss_weight'], distill['epsilon'], OPTION_NAMES)
        self.distillation.loss.to(self.device)
        get_root_logger().info(self.distillation.describe())
        if path.get('pretrain_network_g'):
            self.distillation.load_trained_adapters(path['pretrain_network_g'])
        self.total_iter = int(self.opt['train']['total_iter'])
        super().init_training_settings()

    def setup_optimizers(self):
        """One optimizer (``train.optim_g``) over the student and the adapters ``M_i``."""
        options = dict(self.opt['train']['optim_g'])
        params = [p for p in self.net_g.parameters() if p.requires_grad] + list(self.distillation.loss.parameters())
        self.optimizer_g = self.get_optimizer(options.pop('type'), params, **options)
        self.optimizers.append(self.optimizer_g)

    # ---------------------------------------------------------------------------------------- iterations
    def optimize_parameters(self, current_iter):
        self.optimizer_g.zero_grad()
        self.output, losses, scalars = self.distillation.losses(self.net_g, self.lq, self.gt, self.cri_pix,
                                                                current_iter - 1, self.total_iter)
        sum(losses.values()).backward()
        self.distillation.average_adapter_gradients()  # DDP wraps network_g only
        self.optimizer_g.step()
        self.log_dict = self.reduce_loss_dict(OrderedDict(
            [(f'l_{name}', value) for name, value in losses.items()] + list(scalars.items())))
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def save(self, epoch, current_iter):
        """``net_g_<iter>.pth``: the student (``params``, ``params_ema``) and the trained adapters."""
        nets, keys = [self.net_g], ['params']
        if hasattr(self, 'net_g_ema'):
            nets, keys = nets + [self.net_g_ema], keys + ['params_ema']
        self.save_network(nets + [self.distillation.loss.adapters], 'net_g', current_iter, keys + [ADAPTERS_KEY])
        self.save_training_state(epoch, current_iter)
