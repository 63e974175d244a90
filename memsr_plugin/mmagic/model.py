"""MMagic model ``MemSRDistillEditor``: MMagic's BaseEditModel whose plain generator learns from a frozen teacher
through MemSR's initialisation-aware distillation (``memsr_plugin.distillation``).

Config sketch (see ``options/mmagic/memsr/``)::

    custom_imports = dict(imports=['effsr_core.mmagic'], allow_failed_imports=False)
    model = dict(type='MemSRDistillEditor', generator=dict(type='PlainConvSR', ...),
                 teacher=dict(type='EDSRNet', ...), teacher_checkpoint='edsr.pth',
                 distill=dict(loss_weight=0.3, epsilon=1e-5, init_file='init.pth'),
                 pixel_loss=dict(type='L1Loss'), ...)

The generator starts from the initialisation file's ``params`` (mmengine's ``load_from`` would not read that
BasicSR-style file); ``load_from`` / ``resume`` then load an editor checkpoint over it. The teacher's plain form
is kept outside the module tree (not in ``state_dict``, not optimised); the adapters are the submodule
``distill_loss`` (saved and resumed with the generator). The iteration and ``max_iters`` of Eq. 14
come from mmengine's message hub (its ``RuntimeInfoHook``), so no extra hook is needed.
"""
from __future__ import annotations

import os.path as osp

from mmagic.models.base_models import BaseEditModel
from mmengine.logging import MessageHub, MMLogger

from effsr_core.checkpoints import load_weights, read_generator_state
from effsr_core.options import OptionError, check_keys, parameter_names
from mmagic.registry import MODELS
from memsr_plugin.distillation import DistillationInit, MemSRDistillation
from memsr_plugin.options import DISTILL, MMAGIC_MODEL

OPTION_NAMES = {'init_file': 'model.distill.init_file', 'student': 'model.generator', 'teacher': 'model.teacher'}


@MODELS.register_module()
class MemSRDistillEditor(BaseEditModel):
    """BaseEditModel trained with L1 + λ·ε^(iter/total)·(1/n)·Σ MSE(F_T_i, M_i * F_S_i) (MemSR Eq. 14).

    Args:
        generator: the plain student (``PlainConvSR``), as the initialisation file describes it; its weights
            are set from the file's ``params``.
        teacher: the teacher network config (e.g. ``EDSRNet``); frozen, rebuilt from ``teacher_checkpoint``
            whenever the model is built (fresh or resumed run), never saved.
        teacher_checkpoint: the teacher's trained weights (MMagic, BasicSR or bare state dict).
        distill: the ``distill`` section (``memsr_plugin.options.DISTILL``).
        pixel_loss: the task loss of Eq. 13 (the paper: L1).
        Other arguments: as MMagic's ``BaseEditModel``.
    """

    def __init__(self, generator: dict, teacher: dict, teacher_checkpoint: str, distill: dict, pixel_loss: dict,
                 **kwargs):
        check_keys('model', kwargs, {*parameter_names(BaseEditModel.__init__),
                                     *parameter_names(MemSRDistillEditor.__init__)})
        MMAGIC_MODEL.check({'teacher': teacher, 'teacher_checkpoint': teacher_checkpoint}, 'model')
        distill = DISTILL.check(distill, 'model.distill')
        init = DistillationInit.read(distill['init_file'], OPTION_NAMES['init_file'])
        if not osp.isfile(osp.expanduser(teacher_checkpoint)):
            raise OptionError(f'model.teacher_checkpoint: file {teacher_checkpoint!r} does not exist.')
        super().__init__(generator=generator, pixel_loss=pixel_loss, **kwargs)
        load_weights(self.generator, init.params, source=f'{distill["init_file"]} (params)')
        teacher_net = MODELS.build(teacher)
        load_weights(teacher_net, read_generator_state(osp.expanduser(teacher_checkpoint)),
                     source=teacher_checkpoint)
        distillation = MemSRDistillation(init, teacher_net, self.generator, distill['loss_weight'],
                                         distill['epsilon'], OPTION_NAMES)
        self.distill_loss = distillation.loss  # the trainable adapters: in state_dict and the optimizer
        self.distillation = distillation  # not a module: its frozen teacher stays outside the module tree
        MMLogger.get_current_instance().info(distillation.describe())

    def forward_train(self, inputs, data_samples=None, **kwargs):
        hub = MessageHub.get_current_instance()
        iteration, total = hub.get_info('iter'), hub.get_info('max_iters')
        if iteration is None or total is None:
            raise RuntimeError('MemSRDistillEditor reads iter and max_iters from the message hub: train it with '
                               'mmengine\'s Runner (its RuntimeInfoHook sets them).')
        _, losses, scalars = self.distillation.losses(self.generator, inputs, data_samples.gt_img, self.pixel_loss,
                                                      iteration, total)
        return {f'loss_{name}': value for name, value in losses.items()} | scalars
