"""MemSR distillation's options, declared once: they check BasicSR YAMLs and MMagic configs and make the table in
docs/options.md.

The ``distill`` section is the same in both toolboxes (``distill:`` in a BasicSR YAML, ``model.distill`` in an
MMagic config); the teacher is where each toolbox keeps networks (``network_t`` + ``path.pretrain_network_t`` /
``model.teacher`` + ``model.teacher_checkpoint``).
"""
from __future__ import annotations

from effsr_core.options import Option, OptionSection

DISTILL = OptionSection('distill', 'initialisation-aware feature distillation (MemSR Sec. 3.4, Eq. 12-14)', (
    Option('loss_weight', 0.3, 'lambda of Eq. 14: weight of the distillation term at the first iteration',
           minimum=0),
    Option('epsilon', 1e-5, 'epsilon of Eq. 14: the weight decays as lambda * epsilon^(iteration / total)',
           minimum=0, maximum=1, exclusive_minimum=True),
    Option('init_file', None, 'the winning-initialisation file (python -m memsr_plugin.init): its adapters, '
           'layers and teacher_form define the distilled features', type=str),
), nullable=False, where='BasicSR: `distill:` (model_type MemSRDistillModel) · MMagic: `model.distill` '
                         '(MemSRDistillEditor)')

#: Arguments of the MMagic model ``MemSRDistillEditor`` besides those of MMagic's ``BaseEditModel``.
MMAGIC_MODEL = OptionSection('model', 'MemSR additions to an MMagic MemSRDistillEditor model', (
    Option('teacher', None, 'the teacher network, e.g. dict(type="EDSRNet", ...); frozen, never saved', type=dict),
    Option('teacher_checkpoint', None, 'the teacher\'s weights (MMagic, BasicSR or plain state dict)', type=str),
), nullable=False, where='MMagic: `model=dict(type=\'MemSRDistillEditor\', ...)`, beside the arguments of '
                        'MMagic\'s BaseEditModel')
