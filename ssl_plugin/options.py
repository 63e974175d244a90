"""SSL's options, declared once: they check BasicSR YAMLs and MMagic configs and make the table in docs/options.md.

The ``pruning`` section is the same in both toolboxes (``pruning:`` in a BasicSR YAML, ``model.pruning`` in an
MMagic config); the training options are where each toolbox keeps them (``train:`` / the model and hook).
"""
from __future__ import annotations

from typing import Any

from effsr_core.options import Option, OptionError, OptionSection

METHODS = ('ssl', 'l1_norm', 'assl')
SELECTIONS = ('min_global', 'max_global', 'min_local', 'max_local', 'random')
UNITS = ('in', 'mid', 'out', 'hidden', 'upsampler')
#: Score of a 4-filter pixel-shuffle unit: the L1 norm of its 4 filters (``sum``, the paper's "four filters as a
#: pruning unit to evaluate their importance") or its mean per filter (``mean``: comparable with single filters in a
#: global ranking, where ``sum`` makes a unit ~4x as important and Min-Global then rarely prunes the upsampler).
GROUP_SCORES = ('sum', 'mean')
ROUND_TO = (None, 2, 4, 8, 16, 32, 64)


def _delta_not_above_tau(values: dict[str, Any], prefix: str) -> None:
    if values['delta'] > values['tau']:
        raise OptionError(f'{prefix}.delta: {values["delta"]:g} exceeds {prefix}.tau ({values["tau"]:g}); '
                          'alpha grows by delta up to tau.')


REGULARIZATION = OptionSection('regularization', 'growing sparsity regularisation (SSL Eq. 1)', (
    Option('delta', 1e-4, 'increment of the regularisation weight alpha', minimum=0, exclusive_minimum=True),
    Option('tau', 0.1, 'largest alpha (alpha grows by delta until it reaches tau)', minimum=0, exclusive_minimum=True),
    Option('t1', 5, 'iterations between two increments of alpha', minimum=1),
    Option('t2', 3375, 'iterations at alpha = tau before pruning', minimum=0),
), validate=_delta_not_above_tau)

PRUNING = OptionSection('pruning', 'what to prune, how much, and how to regularise first', (
    Option('method', 'ssl', 'ssl (the paper), l1_norm (one-shot, Li et al. 2017) or assl (aligned, NeurIPS 2021)',
           choices=METHODS),
    Option('ratio', 0.5, 'fraction of the units to prune', minimum=0, maximum=1, exclusive_maximum=True),
    Option('selection', None, 'which units go: lowest / highest L1 score over all groups or per group, or random '
           '(default: min_global for ssl, min_local otherwise)', type=str, choices=SELECTIONS, nullable=True),
    Option('units', None, 'kinds of units to prune (default: in, mid, out, upsampler; assl: hidden, mid, upsampler)',
           type=str, choices=UNITS, nullable=True, is_list=True),
    Option('round_to', None, 'round every kept width to a multiple of this (8 or 16 suit oneDNN / tensor cores)',
           type=int, choices=ROUND_TO, nullable=True),
    REGULARIZATION,
    Option('freeze_flow', True, 'keep SpyNet frozen while regularising'),
    Option('group_score', 'sum', 'score of a 4-filter pixel-shuffle unit: sum of its filters\' L1 norms (paper) or '
           'their mean', choices=GROUP_SCORES),
    Option('seed', 0, 'seed of the random selection', minimum=0),
), where='BasicSR: `pruning:` (model_type SSLPruningModel) · MMagic: `model.pruning` (SSLPruningVSR)')

#: Keys of ``train:`` that ``SSLPruningModel`` reads besides those of BasicSR's ``VideoRecurrentModel``.
BASICSR_TRAIN = OptionSection('train', 'SSL additions to the train section of a BasicSR experiment', (
    Option('tf_opt', None, 'Temporal Finetuning loss used after pruning, e.g. {type: TemporalFinetuneLoss}',
           type=dict, nullable=True),
    Option('factor_lr_mul', 1.0, 'learning-rate multiplier of the scaling factors while regularising',
           minimum=0, exclusive_minimum=True),
), where='BasicSR: `train:` of model_type SSLPruningModel, beside BasicSR\'s VideoRecurrentModel keys')

#: Arguments of the MMagic model ``SSLPruningVSR`` besides those of MMagic's ``BasicVSR``.
MMAGIC_MODEL = OptionSection('model', 'SSL additions to an MMagic SSLPruningVSR model', (
    Option('tf_loss', None, 'Temporal Finetuning loss used after pruning, e.g. dict(type="TemporalFinetuneLoss")',
           type=dict, nullable=True),
), where='MMagic: `model=dict(type=\'SSLPruningVSR\', ...)`, beside the arguments of MMagic\'s BasicVSR')

#: Arguments of the MMagic hook ``SSLPruningHook``.
MMAGIC_HOOK = OptionSection('SSLPruningHook', 'the hook that drives pruning in MMagic\'s runner', (
    Option('curve_interval', 50, 'record the mean scaling factors every this many iterations', minimum=1),
), where='MMagic: `custom_hooks=[dict(type=\'SSLPruningHook\', ...)]`')
