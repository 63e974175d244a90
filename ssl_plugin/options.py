"""SSL's options, declared once: they check BasicSR YAMLs and MMagic configs and make the table in docs/options.md.

The ``pruning`` section is the same in both toolboxes (``pruning:`` in a BasicSR YAML, ``model.pruning`` in an
MMagic config); the training options are where each toolbox keeps them (``train:`` / the model and hook).
"""
from __future__ import annotations

from typing import Any

from effsr_core.cost_model.device_key import BACKENDS
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

def _one_latency_target(values: dict[str, Any], prefix: str) -> None:
    if (values['speedup'] is None) == (values['ms'] is None):
        raise OptionError(f'{prefix}: give exactly one target, speedup (over the dense network) or ms (per frame); '
                          f'got speedup={values["speedup"]}, ms={values["ms"]}.')


LATENCY = OptionSection('latency', 'prune to a measured latency target instead of a ratio (see docs/ssl.md)', (
    Option('speedup', None, 'predicted speed-up over the dense network to reach', type=float, minimum=1,
           exclusive_minimum=True, nullable=True),
    Option('ms', None, 'predicted latency per output frame to reach, in milliseconds', type=float, minimum=0,
           exclusive_minimum=True, nullable=True),
    Option('backend', 'eager-channels_last', 'the runtime the latency is measured and predicted on',
           choices=tuple(BACKENDS)),
    Option('lr_size', (180, 320), 'LR frame size (height, width) the latency is predicted at', type=int, minimum=8,
           is_list=True),
    Option('frames', 4, 'frames of the clip the latency is predicted on (reported per frame)', minimum=2),
    Option('step', 8, 'try each kept width at the next multiples of this (the staircase of the device\'s '
           'kernels: units inside a step that cost nothing are kept)', choices=(1, 2, 4, 8, 16, 32)),
    Option('table', None, 'cost table file (JSON; default: one per device key under ~/.cache/effsr/cost_tables)',
           type=str, nullable=True),
), optional=True, validate=_one_latency_target)


def _ratio_or_latency(values: dict[str, Any], prefix: str) -> None:
    if values['ratio'] is not None and values['latency'] is not None:
        raise OptionError(f'{prefix}.ratio: {values["ratio"]:g} given together with {prefix}.latency; a latency '
                          'target chooses the ratio itself: remove one of them.')
    if values['round_to'] is not None and values['latency'] is not None:
        raise OptionError(f'{prefix}.round_to: {values["round_to"]} given together with {prefix}.latency; the latency '
                          f'target moves every width to the fastest of its step ({prefix}.latency.step): remove '
                          'round_to.')
    if values['latency'] is not None and len(values['latency']['lr_size']) != 2:
        raise OptionError(f'{prefix}.latency.lr_size: {list(values["latency"]["lr_size"])} is not (height, width).')


PRUNING = OptionSection('pruning', 'what to prune, how much, and how to regularise first', (
    Option('method', 'ssl', 'ssl (the paper), l1_norm (one-shot, Li et al. 2017) or assl (aligned, NeurIPS 2021)',
           choices=METHODS),
    Option('ratio', None, 'fraction of the units to prune (default 0.5 without a latency target)', type=float,
           minimum=0, maximum=1, exclusive_maximum=True, nullable=True),
    Option('selection', None, 'which units go: lowest / highest L1 score over all groups or per group, or random '
           '(default: min_global for ssl, min_local otherwise)', type=str, choices=SELECTIONS, nullable=True),
    Option('units', None, 'kinds of units to prune (default: in, mid, out, upsampler; assl: hidden, mid, upsampler)',
           type=str, choices=UNITS, nullable=True, is_list=True),
    Option('round_to', None, 'round every kept width to a multiple of this (8 or 16 suit oneDNN / tensor cores)',
           type=int, choices=ROUND_TO, nullable=True),
    LATENCY,
    REGULARIZATION,
    Option('freeze_flow', True, 'keep SpyNet frozen while regularising'),
    Option('group_score', 'sum', 'score of a 4-filter pixel-shuffle unit: sum of its filters\' L1 norms (paper) or '
           'their mean', choices=GROUP_SCORES),
    Option('seed', 0, 'seed of the random selection', minimum=0),
), where='BasicSR: `pruning:` (model_type SSLPruningModel) · MMagic: `model.pruning` (SSLPruningVSR)',
    validate=_ratio_or_latency)

#: ``pruning.ratio`` when neither a ratio nor a latency target is given.
DEFAULT_RATIO = 0.5

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
