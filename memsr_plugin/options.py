"""MemSR's options, declared once: the winning initialisation's settings (``python -m memsr_plugin.init``,
``winning_init.InitSettings``) and the distillation's, which check BasicSR YAMLs and MMagic configs; all make the
tables in docs/options.md.

The ``distill`` section is the same in both toolboxes (``distill:`` in a BasicSR YAML, ``model.distill`` in an
MMagic config); the teacher is where each toolbox keeps networks (``network_t`` + ``path.pretrain_network_t`` /
``model.teacher`` + ``model.teacher_checkpoint``).
"""
from __future__ import annotations

from typing import Any

from effsr_core.cost_model.device_key import BACKENDS
from effsr_core.options import Option, OptionError, OptionSection


def _one_width_rule(values: dict[str, Any], prefix: str) -> None:
    if (values['widths'] is None) == (values['theta'] is None):
        raise OptionError('give exactly one of widths (fixed per-layer widths) and theta (dynamic width, Sec. 3.5)')
    if values['device_backend'] is not None and values['theta'] is None:
        raise OptionError(f'device_backend={values["device_backend"]} moves dynamic widths (theta) to the fastest '
                          'width of their step; fixed widths are kept as given: remove one of them')
    if len(values['device_lr_size']) != 2:
        raise OptionError(f'device_lr_size={list(values["device_lr_size"])} is not (height, width)')


INITIALISATION = OptionSection('initialisation', 'winning initialisation of a plain student (Alg. 1, Sec. 3.5)', (
    Option('widths', None, 'fixed student widths, one per teacher body layer, or one for all', type=int,
           is_list=True, minimum=1, nullable=True),
    Option('theta', None, 'dynamic width: the smallest width per layer with relative error <= theta (Sec. 3.5; the '
           'paper uses 0.05 or 0.14)', type=float, minimum=0, maximum=1, exclusive_minimum=True,
           exclusive_maximum=True, nullable=True),
    Option('samples', 16, 'number of random input patches', minimum=1),
    Option('patch', 48, 'height and width of the input patches', minimum=1),
    Option('seed', 0, 'seed of the random inputs'),
    Option('beta', 3.0, 'mean-shift coefficient of Alg. 1 (0: none)', minimum=0),
    Option('device_backend', None, 'move each dynamic width up to the fastest width of its step on this backend '
           '(measured by the cost model; the error stays within theta)', type=str, choices=tuple(BACKENDS),
           nullable=True),
    Option('device_lr_size', (270, 480), 'LR size (height, width) the widths are measured at (1080p output at x4)',
           type=int, minimum=1, is_list=True),
    Option('device_step', 4, 'widths tried: the multiples of this (and the layer\'s channels)',
           choices=(1, 2, 4, 8, 16)),
    Option('device_table', None, 'cost table file (default: one per device key under ~/.cache/effsr/cost_tables)',
           type=str, nullable=True),
), nullable=False, validate=_one_width_rule,
    where='`python -m memsr_plugin.init`, the same names as flags (exactly one of --widths and --theta) · Python: '
          '`memsr_plugin.winning_init.InitSettings.check(...)`')

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
