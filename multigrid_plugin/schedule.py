"""Multigrid VSR training schedule (Lin et al., Sec. 3.1): which LR patch size and clip length each iteration uses.

Framework-free and stateless: every answer is a pure function of the (1-based, as in BasicSR) iteration, so the
sampler, the LR scheduler and the logs read one object and a resumed run finds its stage from the iteration alone.

Stages are the product of a spatial cycle (LR patch sizes, small to large) and a temporal cycle (frame counts,
short to long):

* ``hierarchical`` (the paper's default): a full temporal cycle inside every spatial stage, p = s x f stages;
* ``synchronous`` (Table 8 ablation): both grow together, stage j uses the j-th patch size and the j-th frame count;
* mode ``spatial`` / ``temporal`` (S-only / T-only ablations; ``spatial`` for sliding-window models such as EDVR
  whose frame count is fixed by the architecture): one cycle only, the other size fixed at its largest value.

A run may train some iterations at its configured shape before the schedule starts (MMagic's ``begin``, SSL's
regularisation before pruning): ``DelayedSchedule`` is the schedule as the training iterations see it, the one
place that offset is applied, whichever toolbox runs it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

ORDERS = ('hierarchical', 'synchronous')
MODES = ('spatial_temporal', 'spatial', 'temporal')
#: The paper's lower bounds: smaller patches spoil the optical flow, fewer frames give too little context.
MIN_PAPER_PATCH_SIZE = 32
MIN_PAPER_FRAMES = 6


class ScheduleError(ValueError):
    """A schedule argument that cannot work; ``field`` names the argument (option layers prefix it)."""

    def __init__(self, field: str, message: str):
        super().__init__(f'{field}: {message}')
        self.field = field
        self.message = message


class Stage(NamedTuple):
    """One spatial-temporal stage: 0-based ``index``, LR ``patch_size``, ``frames`` per clip, and its iterations
    ``start + 1 .. start + length`` (``start`` = iterations of the stages before it, Eq. 1's sum of P_j)."""
    index: int
    patch_size: int
    frames: int
    start: int
    length: int

    @property
    def first_iter(self) -> int:
        return self.start + 1

    @property
    def last_iter(self) -> int:
        return self.start + self.length


def paper_spatial_sizes(patch_size: int) -> tuple[int, ...]:
    """The paper's spatial cycle for a baseline LR patch size H: {max(32, H/2), H}, H/2 rounded down; a single
    size when H <= 32 (e.g. 64 -> (32, 64), 48 -> (32, 48), 32 -> (32,))."""
    check_sizes('patch_size', (patch_size,))
    return tuple(sorted({min(patch_size, max(MIN_PAPER_PATCH_SIZE, patch_size // 2)), patch_size}))


def paper_temporal_sizes(frames: int) -> tuple[int, ...]:
    """The paper's temporal cycle for a baseline clip length T: {max(6, T/2), 3T/4, T}, read as three evenly
    spaced sizes T - 2d, T - d, T with d = ceil(T/4).

    This is the one reading that gives both published examples: REDS T=15 -> 7/11/15 and Vimeo-90K T=14 -> 6/10/14
    (14/2 is exactly 7, so no rounding of T/2 alone yields Vimeo's 6; T - d = floor(3T/4) always). Where T/2 and
    3T/4 are whole (T=16 -> 8/12/16) the sizes are exact. Sizes are clamped to [6, T] and duplicates dropped, so
    short clips get fewer stages (T=8 -> 6/8, T<=6 -> T alone).
    """
    check_sizes('frames', (frames,))
    step = math.ceil(frames / 4)
    candidates = (frames - 2 * step, frames - step, frames)
    return tuple(sorted({min(frames, max(MIN_PAPER_FRAMES, size)) for size in candidates}))


def check_sizes(name: str, sizes: Sequence[int]) -> tuple[int, ...]:
    """``sizes`` as a tuple if it is a non-empty, strictly increasing list of positive ints, else ScheduleError."""
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or not sizes:
        raise ScheduleError(name, f'{sizes!r} is not a non-empty list of positive ints.')
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise ScheduleError(name, f'{list(sizes)} must hold positive ints only.')
    if any(b <= a for a, b in zip(sizes, sizes[1:])):
        raise ScheduleError(name, f'{list(sizes)} must be strictly increasing (small to large).')
    return tuple(sizes)


def stage_sizes(spatial_sizes: Sequence[int], temporal_sizes: Sequence[int], order: str = 'hierarchical',
                mode: str = 'spatial_temporal') -> tuple[tuple[int, int], ...]:
    """``(patch_size, frames)`` of every stage, in training order."""
    spatial = check_sizes('spatial_sizes', spatial_sizes)
    temporal = check_sizes('temporal_sizes', temporal_sizes)
    if order not in ORDERS:
        raise ScheduleError('order', f'{order!r} is not one of {", ".join(ORDERS)}.')
    if mode not in MODES:
        raise ScheduleError('mode', f'{mode!r} is not one of {", ".join(MODES)}.')
    if mode == 'spatial':
        return tuple((s, temporal[-1]) for s in spatial)
    if mode == 'temporal':
        return tuple((spatial[-1], t) for t in temporal)
    if order == 'hierarchical':
        return tuple((s, t) for s in spatial for t in temporal)
    if len(spatial) != len(temporal):
        raise ScheduleError('temporal_sizes', f'the synchronous order grows both sizes together, so it needs as many '
                                              f'temporal sizes ({len(temporal)}) as spatial sizes ({len(spatial)}).')
    return tuple(zip(spatial, temporal))


def check_stage_iters(stage_iters: Sequence[int] | None, num_stages: int) -> tuple[int, ...] | None:
    """``stage_iters`` as a tuple if it gives one positive iteration count per stage (or is None), else
    ScheduleError; whether it adds up to the training length is ``stage_lengths``' check."""
    if stage_iters is None:
        return None
    if isinstance(stage_iters, (str, bytes)) or not isinstance(stage_iters, Sequence) or len(stage_iters) != num_stages:
        raise ScheduleError('stage_iters', f'{stage_iters!r} must list one iteration count per stage '
                                           f'({num_stages} stages).')
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in stage_iters):
        raise ScheduleError('stage_iters', f'{list(stage_iters)} must hold positive ints only.')
    return tuple(stage_iters)


def stage_lengths(num_stages: int, total_iter: int, stage_iters: Sequence[int] | None = None) -> tuple[int, ...]:
    """Iterations of every stage: ``stage_iters`` (adding up to ``total_iter``), or equal parts of ``total_iter``
    (when it does not divide, the last stages take the remainder, one iteration each)."""
    if isinstance(total_iter, bool) or not isinstance(total_iter, int) or total_iter < num_stages:
        raise ScheduleError('total_iter', f'{total_iter!r} must be an int of at least the number of stages '
                                          f'({num_stages}), one iteration per stage.')
    lengths = check_stage_iters(stage_iters, num_stages)
    if lengths is None:
        base, remainder = divmod(total_iter, num_stages)
        return tuple(base + (j >= num_stages - remainder) for j in range(num_stages))
    if sum(lengths) != total_iter:
        raise ScheduleError('stage_iters', f'{list(lengths)} adds up to {sum(lengths)}, not to the {total_iter} '
                                           'training iterations.')
    return lengths


@dataclass(frozen=True)
class MultigridSchedule:
    """The stages of a multigrid training run over ``total_iter`` iterations.

    Args:
        spatial_sizes: LR patch sizes, strictly increasing (the last one is the baseline's).
        temporal_sizes: frames per training clip, strictly increasing (the last one is the baseline's).
        total_iter: training iterations (I_total).
        order: ``'hierarchical'`` (temporal cycle inside each spatial stage) or ``'synchronous'``.
        mode: ``'spatial_temporal'``, ``'spatial'`` (frames fixed at ``temporal_sizes[-1]``) or ``'temporal'``
            (patch size fixed at ``spatial_sizes[-1]``).
        stage_iters: iterations per stage (adding up to ``total_iter``), or None for equal stages.
    """
    spatial_sizes: tuple[int, ...]
    temporal_sizes: tuple[int, ...]
    total_iter: int
    order: str = 'hierarchical'
    mode: str = 'spatial_temporal'
    stage_iters: tuple[int, ...] | None = None
    stages: tuple[Stage, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sizes = stage_sizes(self.spatial_sizes, self.temporal_sizes, self.order, self.mode)
        lengths = stage_lengths(len(sizes), self.total_iter, self.stage_iters)
        starts = [sum(lengths[:j]) for j in range(len(lengths))]
        object.__setattr__(self, 'spatial_sizes', tuple(self.spatial_sizes))
        object.__setattr__(self, 'temporal_sizes', tuple(self.temporal_sizes))
        if self.stage_iters is not None:
            object.__setattr__(self, 'stage_iters', tuple(self.stage_iters))
        object.__setattr__(self, 'stages', tuple(
            Stage(j, patch, frames, start, length)
            for j, ((patch, frames), start, length) in enumerate(zip(sizes, starts, lengths))))

    @classmethod
    def from_baseline(cls, patch_size: int, frames: int, total_iter: int, **options) -> 'MultigridSchedule':
        """The paper's default cycles for a baseline trained on ``patch_size`` LR patches of ``frames`` frames."""
        return cls(paper_spatial_sizes(patch_size), paper_temporal_sizes(frames), total_iter, **options)

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    def stage_index(self, iteration: int) -> int:
        """0-based stage of a 1-based iteration; iterations past ``total_iter`` stay in the last stage."""
        if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 1:
            raise ValueError(f'iteration {iteration!r}: iterations are counted from 1.')
        for stage in self.stages:
            if iteration <= stage.last_iter:
                return stage.index
        return self.num_stages - 1

    def stage_at(self, iteration: int) -> Stage:
        """The stage a 1-based iteration trains in."""
        return self.stages[self.stage_index(iteration)]

    def __call__(self, iteration: int) -> tuple[int, int, int]:
        """``(stage index, LR patch size, frames)`` of a 1-based iteration."""
        stage = self.stage_at(iteration)
        return stage.index, stage.patch_size, stage.frames

    def stage_start(self, index: int) -> int:
        """Iterations before stage ``index`` (its first iteration is this + 1)."""
        return self.stages[index].start

    def stage_length(self, index: int) -> int:
        """Iterations of stage ``index`` (P_j of Eq. 1)."""
        return self.stages[index].length

    def pixel_frame_ratio(self, baseline_patch_size: int | None = None, baseline_frames: int | None = None) -> float:
        """How many times more LR pixels x frames a fixed-size baseline processes over the same iterations (an
        upper bound of the compute saving; default baseline: the largest sizes). 32/64 x 7/11/15 in six equal
        stages against 64 x 15: about 2.18."""
        patch = self.spatial_sizes[-1] if baseline_patch_size is None else baseline_patch_size
        frames = self.temporal_sizes[-1] if baseline_frames is None else baseline_frames
        work = sum(stage.length * stage.patch_size ** 2 * stage.frames for stage in self.stages)
        return self.total_iter * patch ** 2 * frames / work


def schedule_length(total_iter: int, offset: int) -> int:
    """Iterations left to a schedule that starts after ``offset`` of ``total_iter`` training iterations (at least
    one, else ScheduleError)."""
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ScheduleError('offset', f'{offset!r} must be a non-negative int.')
    if offset and total_iter - offset < 1:
        raise ScheduleError('total_iter', f'{total_iter} training iterations leave none for the multigrid schedule '
                                          f'after the {offset} iterations before it starts.')
    return total_iter - offset


@dataclass(frozen=True)
class DelayedSchedule:
    """A ``MultigridSchedule`` as the training iterations see it: the first ``offset`` iterations train at the
    ``baseline`` (LR patch size, frames) as configured, then training iteration ``offset + t`` trains at the
    schedule's iteration ``t``. What the batch sampler reads.

    Args:
        schedule: the stages, counted from the schedule's own first iteration (what the LR scheduler reads).
        baseline: the configured (LR patch size, frames); needed when ``offset`` > 0.
        offset: training iterations before the schedule starts.
    """
    schedule: MultigridSchedule
    baseline: tuple[int, int] | None = None
    offset: int = 0

    def __post_init__(self) -> None:
        schedule_length(self.offset + self.schedule.total_iter, self.offset)
        if self.offset and self.baseline is None:
            raise ScheduleError('offset', f'the schedule starts after {self.offset} iterations, but the shape they '
                                          'train at (the baseline LR patch size and frames) is not given.')

    @property
    def total_iter(self) -> int:
        """Training iterations: those before the schedule and the schedule's."""
        return self.offset + self.schedule.total_iter

    def step(self, iteration: int) -> int:
        """The schedule's 1-based iteration of a 1-based training iteration (< 1: before the schedule starts)."""
        return iteration - self.offset

    def __call__(self, iteration: int) -> tuple[int, int, int]:
        """``(stage index, LR patch size, frames)`` of a 1-based training iteration; stage -1 (the baseline shape)
        before the schedule starts."""
        if self.offset and iteration <= self.offset:
            return (-1, *self.baseline)
        return self.schedule(iteration - self.offset)
