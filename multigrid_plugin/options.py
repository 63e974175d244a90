"""Multigrid training's options, declared once: the ``multigrid`` section checks BasicSR options and MMagic
configs, is resolved into the one immutable ``MultigridSettings`` of a run and makes the table in docs/options.md.

Every rule on the section is written here (the declaration and its ``validate`` hook, ``resolve`` for what needs
the training length and the baseline sizes, ``check_eta_min`` for what needs the optimizer's LR). Each toolbox
resolves the section once, where its runs start (BasicSR: the options check and the train loader wrapper; MMagic:
``MultigridHook.before_run``), and hands the settings to the sampler, the LR scheduler, the logs and the plot.
The section's keys are also the keyword arguments of the framework-free ``MultigridLR`` (besides ``total_iter``).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from effsr_core.options import Option, OptionError, OptionSection
from multigrid_plugin.schedule import (MODES, ORDERS, DelayedSchedule, MultigridSchedule, ScheduleError,
                                       check_sizes, check_stage_iters, paper_spatial_sizes, paper_temporal_sizes,
                                       schedule_length, stage_sizes)

#: Shapes of the within-stage decay (see ``multigrid_plugin.lr_schedule``).
FORMS = ('cosine', 'literal')
CYCLES = ('spatial_sizes', 'temporal_sizes')


@contextmanager
def schedule_errors(prefix: str, outside: Mapping[str, str] | None = None) -> Iterator[None]:
    """Re-raise a ``ScheduleError`` as an ``OptionError`` naming the option: ``prefix.<field>``, or
    ``outside[field]`` for values kept outside the section (e.g. ``total_iter`` -> ``train.total_iter``)."""
    try:
        yield
    except ScheduleError as error:
        name = (outside or {}).get(error.field, f'{prefix}.{error.field}')
        raise OptionError(f'{name}: {error.message}') from error


def check_factors(factors: Sequence[float] | None, spatial_sizes: Sequence[int], prefix: str) -> None:
    """``spatial_lr_factors`` gives one factor per spatial size (or is None)."""
    if factors is not None and len(factors) != len(spatial_sizes):
        raise OptionError(f'{prefix}.spatial_lr_factors: {list(factors)} must give one factor per spatial size '
                          f'({len(spatial_sizes)}: {list(spatial_sizes)}).')


def check_eta_min(eta_min: float, lowest_lr: float, spatial_lr_factors: Sequence[float] | None, prefix: str,
                  source: str = '') -> None:
    """The LR floor is not above the lowest LR a stage starts at: ``lowest_lr`` (the lowest base LR, from
    ``source`` if given, for the message) times the lowest spatial factor."""
    lowest = lowest_lr * min(spatial_lr_factors or [1.0])
    if eta_min > lowest:
        raise OptionError(f'{prefix}.eta_min: {eta_min:g} exceeds the lowest starting LR of a stage ({lowest:g}'
                          f'{f", from {source}" if source else ""}); it must not be larger.')


def _check_cycles(values: dict[str, Any], prefix: str) -> None:
    """The cross-option rules that do not need the training length or the baseline sizes."""
    with schedule_errors(prefix):
        for name in CYCLES:
            if values[name] is not None:
                check_sizes(name, values[name])
        if all(values[name] is not None for name in CYCLES):
            num_stages = len(stage_sizes(values['spatial_sizes'], values['temporal_sizes'], values['order'],
                                         values['mode']))
            check_stage_iters(values['stage_iters'], num_stages)
    if values['spatial_sizes'] is not None:  # derived sizes: ``resolve`` checks the factors against them
        check_factors(values['spatial_lr_factors'], values['spatial_sizes'], prefix)


MULTIGRID = OptionSection('multigrid', 'multigrid training: spatial x temporal cycles and the dynamic LR of Eq. 1', (
    Option('spatial_sizes', None, 'LR patch sizes of the spatial cycle, strictly increasing (null: the paper\'s '
           '{max(32, H/2), H} from the baseline LR patch size H)', type=int, minimum=1, nullable=True, is_list=True),
    Option('temporal_sizes', None, 'frames per clip of the temporal cycle, strictly increasing (null: the paper\'s '
           '{max(6, T/2), 3T/4, T} as T-2d, T-d, T with d = ceil(T/4), from the baseline frames T)',
           type=int, minimum=1, nullable=True, is_list=True),
    Option('order', 'hierarchical', 'hierarchical: a temporal cycle inside each spatial stage (paper); synchronous: '
           'both grow together (Table 8 ablation; lists of equal length)', choices=ORDERS),
    Option('mode', 'spatial_temporal', 'which cycles run: both, spatial only (frames fixed at the last temporal '
           'size; sliding-window models such as EDVR) or temporal only (patch fixed at the last spatial size)',
           choices=MODES),
    Option('stage_iters', None, 'iterations of every stage, adding up to the training length (null: equal stages)',
           type=int, minimum=1, nullable=True, is_list=True),
    Option('warmup_iter', 0, 'linear LR warmup over the first iterations (paper: 5000 with large minibatches); '
           'replaces the toolbox\'s own warmup', minimum=0),
    Option('eta_min', 0.0, 'LR floor the cosine decays towards (same for every param group)', minimum=0),
    Option('form', 'cosine', 'decay within a stage: cosine = 1/2(1+cos(pi x)) (cosine annealing, as the text '
           'says), literal = cos(x) as Eq. 1 is printed', choices=FORMS),
    Option('spatial_lr_factors', None, 'multiplier of the base LR in the stages of each spatial size (null: 1); the '
           'paper starts EDVR-M\'s 32x32 stage at 2e-4 of its 8e-4: [0.25, 1.0]', type=float, minimum=0,
           exclusive_minimum=True, nullable=True, is_list=True),
), where='Framework-free: `MultigridLR(optimizer, total_iter, **multigrid)` and `build_schedule()`; the training '
         'length comes from the toolbox (BasicSR `train.total_iter`, MMagic `train_cfg.max_iters`)',
   validate=_check_cycles)


def build_schedule(values: Mapping[str, Any], total_iter: int, prefix: str = 'multigrid', *,
                   baseline_patch_size: int | None = None, baseline_frames: int | None = None,
                   outside: Mapping[str, str] | None = None) -> MultigridSchedule:
    """The schedule of a checked ``multigrid`` section (``MULTIGRID.check(...)``) over ``total_iter`` iterations.

    Args:
        values: the checked section.
        total_iter: training iterations.
        prefix: the section's full option name, for messages.
        baseline_patch_size, baseline_frames: the baseline's LR patch size and frames, from which the paper's
            cycles are derived where ``spatial_sizes`` / ``temporal_sizes`` are null.
        outside: option names, for messages, of ``total_iter`` / ``patch_size`` / ``frames`` (the baseline sizes)
            where the toolbox keeps them, e.g. ``{'total_iter': 'train.total_iter'}``.
    """
    derive = {'spatial_sizes': (baseline_patch_size, paper_spatial_sizes, 'LR patch size'),
              'temporal_sizes': (baseline_frames, paper_temporal_sizes, 'number of frames')}
    cycles = {}
    with schedule_errors(prefix, outside):
        for name, (baseline, paper_sizes, what) in derive.items():
            if values[name] is not None:
                cycles[name] = values[name]
            elif baseline is not None:
                cycles[name] = paper_sizes(baseline)
            else:
                raise OptionError(f'{prefix}.{name}: must be set (a list of ints), as there is no baseline {what} to '
                                  'derive the paper\'s sizes from.')
        return MultigridSchedule(cycles['spatial_sizes'], cycles['temporal_sizes'], total_iter, order=values['order'],
                                 mode=values['mode'], stage_iters=values['stage_iters'])


@dataclass(frozen=True)
class MultigridSettings:
    """The multigrid settings of one training run, checked and resolved once (``resolve``): what every iteration
    trains at (``training``, read by the batch sampler and the logs) and the LR settings of ``MultigridLR``.
    Immutable, so it is handed on (and deep-copied) as the same object.

    Args:
        training: the stages as the training iterations see them (with the offset before the schedule starts).
        warmup_iter, eta_min, form, spatial_lr_factors: Eq. 1's settings (see ``multigrid_plugin.lr_schedule``).
        name: the section's option name in this toolbox, for messages (``multigrid``, ``MultigridHook``).
    """
    training: DelayedSchedule
    warmup_iter: int = MULTIGRID['warmup_iter'].default
    eta_min: float = MULTIGRID['eta_min'].default
    form: str = MULTIGRID['form'].default
    spatial_lr_factors: tuple[float, ...] | None = None
    name: str = MULTIGRID.name

    @property
    def schedule(self) -> MultigridSchedule:
        """The stages counted from the schedule's first iteration (what ``MultigridLR`` steps through)."""
        return self.training.schedule

    @property
    def offset(self) -> int:
        """Training iterations before the schedule starts."""
        return self.training.offset

    def __deepcopy__(self, memo: dict) -> 'MultigridSettings':
        return self  # immutable: toolboxes deep-copy their options, and every reader keeps the same object


def resolve(values: Mapping[str, Any], total_iter: int, prefix: str = MULTIGRID.name, *,
            baseline_patch_size: int | None = None, baseline_frames: int | None = None, offset: int = 0,
            outside: Mapping[str, str] | None = None) -> MultigridSettings:
    """The settings of a checked ``multigrid`` section (``MULTIGRID.check(...)``) for a run of ``total_iter``
    training iterations whose schedule starts after ``offset`` of them (arguments as for ``build_schedule``).

    Resolved once: the same checked values (the shared read-only mapping the check returns) with the same run give
    back the same object, so the options check at the door and the pipeline that trains share one.
    """
    key = (id(values), total_iter, prefix, baseline_patch_size, baseline_frames, offset,
           None if outside is None else tuple(sorted(outside.items())))
    if key not in _RESOLVED:
        _RESOLVED[key] = (values, _resolve(values, total_iter, prefix, baseline_patch_size=baseline_patch_size,
                                           baseline_frames=baseline_frames, offset=offset, outside=outside))
    return _RESOLVED[key][1]


#: ``resolve``'s settings by checked values (held, so that their id is not reused) and run.
_RESOLVED: dict[tuple, tuple[Mapping[str, Any], 'MultigridSettings']] = {}


def _resolve(values: Mapping[str, Any], total_iter: int, prefix: str, *, baseline_patch_size: int | None,
             baseline_frames: int | None, offset: int, outside: Mapping[str, str] | None) -> MultigridSettings:
    with schedule_errors(prefix, outside):
        length = schedule_length(total_iter, offset)
    schedule = build_schedule(values, length, prefix, baseline_patch_size=baseline_patch_size,
                              baseline_frames=baseline_frames, outside=outside)
    if values['spatial_sizes'] is None:  # derived here: the section's own check could not compare them
        check_factors(values['spatial_lr_factors'], schedule.spatial_sizes, prefix)
    if values['warmup_iter'] >= length:
        raise OptionError(f'{prefix}.warmup_iter: {values["warmup_iter"]} is not below the {length} iterations of the '
                          'schedule; the run would end inside the warm-up, never at the configured learning rate.')
    baseline = None if baseline_patch_size is None or baseline_frames is None else (baseline_patch_size,
                                                                                    baseline_frames)
    with schedule_errors(prefix, outside):
        training = DelayedSchedule(schedule, baseline, offset)
    return MultigridSettings(training, values['warmup_iter'], values['eta_min'], values['form'],
                             values['spatial_lr_factors'], prefix)


#: Arguments of the MMagic hook ``MultigridHook`` besides the ``multigrid`` section's keys.
MMAGIC_HOOK = OptionSection('MultigridHook', 'where the multigrid schedule starts in MMagic\'s runner', (
    Option('begin', 0, 'iterations trained as configured (fixed shapes, no multigrid) before the schedule starts, '
           'e.g. SSL\'s regularisation phase, after which SSLPruningHook starts the param scheduler; the schedule '
           'then spans train_cfg.max_iters - begin iterations', minimum=0),
), where='MMagic: `custom_hooks=[dict(type=\'MultigridHook\', begin=..., **multigrid)]`')
