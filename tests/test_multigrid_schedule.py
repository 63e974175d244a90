"""Multigrid training's framework-free core: the schedule as a pure function of the iteration, the dynamic LR of
Eq. 1 (values written out by hand: the cosines of the few angles involved), the option refusals."""
import copy
import io

import pytest
import torch

import multigrid_plugin  # noqa: F401  (registers MultigridLR, as the plugin discovery does)
from effsr_core import registry
from effsr_core.options import OptionError
from multigrid_plugin.lr_schedule import MultigridLR, linear_scaling, multigrid_lr
from multigrid_plugin.options import MULTIGRID, build_schedule, resolve
from multigrid_plugin.schedule import (DelayedSchedule, MultigridSchedule, ScheduleError, paper_spatial_sizes,
                                       paper_temporal_sizes)

REDS = {'spatial_sizes': [32, 64], 'temporal_sizes': [7, 11, 15]}


# --- the schedule ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('frames, sizes', [
    (15, (7, 11, 15)),  # REDS (paper)
    (14, (6, 10, 14)),  # Vimeo-90K, 7 frames flipped and concatenated (paper)
    (16, (8, 12, 16)),  # T/2 and 3T/4 whole: exact
    (8, (6, 8)),  # max(6, T/2) meets 3T/4: one stage fewer
    (5, (5,)),  # shorter than the minimum of 6: no temporal cycle
])
def test_paper_temporal_sizes(frames, sizes):
    assert paper_temporal_sizes(frames) == sizes


@pytest.mark.parametrize('patch_size, sizes', [(64, (32, 64)), (48, (32, 48)), (32, (32,)), (16, (16,))])
def test_paper_spatial_sizes(patch_size, sizes):
    assert paper_spatial_sizes(patch_size) == sizes


def test_reds_and_vimeo_defaults_from_the_baseline():
    reds = MultigridSchedule.from_baseline(64, 15, 60)
    vimeo = build_schedule(MULTIGRID.check({}), 60, baseline_patch_size=64, baseline_frames=14)
    assert [(s.patch_size, s.frames) for s in reds.stages] == [(32, 7), (32, 11), (32, 15), (64, 7), (64, 11),
                                                               (64, 15)]
    assert [(s.patch_size, s.frames) for s in vimeo.stages] == [(32, 6), (32, 10), (32, 14), (64, 6), (64, 10),
                                                                (64, 14)]


def test_hierarchical_stage_boundaries():
    schedule = MultigridSchedule((32, 64), (7, 11, 15), 60)
    expected = {1: (0, 32, 7), 10: (0, 32, 7), 11: (1, 32, 11), 20: (1, 32, 11), 21: (2, 32, 15), 30: (2, 32, 15),
                31: (3, 64, 7), 40: (3, 64, 7), 41: (4, 64, 11), 50: (4, 64, 11), 51: (5, 64, 15), 60: (5, 64, 15)}
    assert {t: schedule(t) for t in expected} == expected
    assert [schedule.stage_start(j) for j in range(6)] == [0, 10, 20, 30, 40, 50]
    assert [schedule.stage_length(j) for j in range(6)] == [10] * 6
    assert schedule.stage_at(41).first_iter == 41 and schedule.stage_at(41).last_iter == 50


def test_synchronous_order_grows_both_sizes_together():
    schedule = MultigridSchedule((32, 48, 64), (7, 11, 15), 30, order='synchronous')
    expected = {1: (0, 32, 7), 10: (0, 32, 7), 11: (1, 48, 11), 20: (1, 48, 11), 21: (2, 64, 15), 30: (2, 64, 15)}
    assert {t: schedule(t) for t in expected} == expected


def test_spatial_only_keeps_the_largest_frame_count():
    schedule = MultigridSchedule((32, 64), (7, 11, 15), 20, mode='spatial')
    assert schedule.num_stages == 2
    expected = {1: (0, 32, 15), 10: (0, 32, 15), 11: (1, 64, 15), 20: (1, 64, 15)}
    assert {t: schedule(t) for t in expected} == expected


def test_temporal_only_keeps_the_largest_patch():
    schedule = MultigridSchedule((32, 64), (7, 11, 15), 30, mode='temporal')
    expected = {1: (0, 64, 7), 10: (0, 64, 7), 11: (1, 64, 11), 21: (2, 64, 15), 30: (2, 64, 15)}
    assert {t: schedule(t) for t in expected} == expected


def test_given_stage_lengths():
    schedule = MultigridSchedule((32, 64), (7, 11, 15), 30, stage_iters=(1, 2, 3, 4, 5, 15))
    assert [(s.first_iter, s.last_iter) for s in schedule.stages] == [(1, 1), (2, 3), (4, 6), (7, 10), (11, 15),
                                                                      (16, 30)]
    iterations = (1, 2, 3, 4, 6, 7, 10, 11, 15, 16, 30)
    assert [schedule.stage_index(t) for t in iterations] == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_equal_stages_give_the_remainder_to_the_last_stages():
    assert [s.length for s in MultigridSchedule((32, 64), (7, 11, 15), 10).stages] == [1, 1, 2, 2, 2, 2]


def test_iterations_are_one_based_and_training_past_the_end_stays_in_the_last_stage():
    schedule = MultigridSchedule((32, 64), (7, 11, 15), 60)
    assert schedule(61) == (5, 64, 15)
    with pytest.raises(ValueError, match='counted from 1'):
        schedule(0)


def test_schedule_errors_name_the_argument():
    with pytest.raises(ScheduleError) as error:
        MultigridSchedule((32, 64), (7, 11, 15), 60, order='synchronous')
    assert error.value.field == 'temporal_sizes'
    with pytest.raises(ScheduleError) as error:
        MultigridSchedule((32, 64), (7, 11, 15), 5)
    assert error.value.field == 'total_iter'


def test_pixel_frame_ratio():
    # baseline 64^2 x 15 = 61440 per iteration; six equal stages average (1024 x 33 + 4096 x 33) / 6 = 28160
    assert MultigridSchedule((32, 64), (7, 11, 15), 60).pixel_frame_ratio() == pytest.approx(61440 / 28160)
    assert MultigridSchedule((32, 64), (7, 11, 15), 60).pixel_frame_ratio() == pytest.approx(2.1818, abs=1e-4)
    # S-only: (1024 + 4096) / 2 x 15 against 4096 x 15
    assert MultigridSchedule((32, 64), (7, 11, 15), 60, mode='spatial').pixel_frame_ratio() == pytest.approx(1.6)
    # unequal stages: 10 x 32^2 x 7 + 50 x 64^2 x 15 over 60 x 64^2 x 15
    two = MultigridSchedule((32, 64), (7, 15), 60, order='synchronous', stage_iters=(10, 50))
    assert two.pixel_frame_ratio() == pytest.approx(3686400 / (71680 + 3072000))


# --- the dynamic LR ---------------------------------------------------------------------------------------------------

# Six stages of 4 iterations (32/64 x 7/11/15 over 24 iterations). Decay factors, written out:
#   x = 1/24: (1 + cos(pi/24)) / 2 = 0.99572243;   x = 2/24: (1 + cos(pi/12)) / 2 = 0.98296291
#   x = 3/24: (1 + cos(pi/8)) / 2  = 0.96193977;   last stage x = 1/4, 2/4, 3/4: 0.85355339, 0.5, 0.14644661
COSINE = {1: 1.0, 2: 0.9957224306869052, 3: 0.9829629131445341, 4: 0.9619397662556434,
          5: 1.0, 8: 0.9619397662556434, 9: 1.0, 12: 0.9619397662556434, 13: 1.0, 16: 0.9619397662556434,
          17: 1.0, 20: 0.9619397662556434, 21: 1.0, 22: 0.8535533905932737, 23: 0.5, 24: 0.14644660940672627}
# Eq. 1 as printed: cos(3/24) = 0.99219767; last stage cos(1/4), cos(2/4), cos(3/4) = 0.96891242, 0.87758256, 0.73168887
LITERAL = {1: 1.0, 4: 0.992197667229329, 5: 1.0, 20: 0.992197667229329, 21: 1.0, 22: 0.9689124217106447,
           23: 0.8775825618903728, 24: 0.7316888688738209}
# warmup over 8 iterations: t/8 times the cosine values above
WARMUP = {1: 0.125, 2: 0.25 * 0.9957224306869052, 4: 0.5 * 0.9619397662556434, 5: 0.625, 8: 0.9619397662556434,
          9: 1.0, 24: 0.14644660940672627}


def _optimizer(*lrs):
    return torch.optim.SGD([{'params': [torch.nn.Parameter(torch.zeros(1))], 'lr': lr} for lr in lrs], lr=lrs[0])


def _run(scheduler, optimizer, until, lrs=None):
    """LRs of the iterations up to ``until`` as BasicSR sees them: built before iteration 1, stepped from 2 on."""
    lrs = {1: scheduler.get_last_lr()} if lrs is None else lrs
    for iteration in range(max(lrs) + 1, until + 1):
        optimizer.step()
        scheduler.step()
        lrs[iteration] = scheduler.get_last_lr()
    return lrs


@pytest.mark.parametrize('form, warmup_iter, expected', [('cosine', 0, COSINE), ('literal', 0, LITERAL),
                                                         ('cosine', 8, WARMUP)])
def test_lr_at_every_stage_boundary(form, warmup_iter, expected):
    eta = linear_scaling(16, 2e-4, 64)
    optimizer = _optimizer(eta, eta / 4)  # two param groups, each with its own base LR
    scheduler = MultigridLR(optimizer, 24, form=form, warmup_iter=warmup_iter, **REDS)
    lrs = _run(scheduler, optimizer, 24)
    for iteration, factor in expected.items():
        assert lrs[iteration] == pytest.approx([8e-4 * factor, 2e-4 * factor], rel=1e-12), iteration


def test_eta_min_is_the_floor_of_the_decay():
    schedule = MultigridSchedule((32, 64), (7, 11, 15), 24)
    assert multigrid_lr(schedule, 1, 1.0, eta_min=0.1) == 1.0
    # 0.1 + 0.9 x 0.14644661
    assert multigrid_lr(schedule, 24, 1.0, eta_min=0.1) == pytest.approx(0.23180194846605364)
    assert multigrid_lr(schedule, 25, 1.0, eta_min=0.1) == pytest.approx(0.1)  # past the end: the floor


@pytest.mark.parametrize('stop', [6, 10, 22])  # inside the warmup, mid-stage 3, mid last stage
def test_resume_mid_stage_gives_the_uninterrupted_lrs(stop):
    options = dict(warmup_iter=8, eta_min=1e-6, **REDS)
    optimizer = _optimizer(8e-4, 2e-4)
    uninterrupted = _run(MultigridLR(optimizer, 24, **options), optimizer, 24)

    optimizer = _optimizer(8e-4, 2e-4)
    scheduler = MultigridLR(optimizer, 24, **options)
    lrs = _run(scheduler, optimizer, stop)
    buffer = io.BytesIO()
    torch.save({'scheduler': scheduler.state_dict(), 'optimizer': optimizer.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # plain data only: loads without trusting pickled classes

    optimizer = _optimizer(8e-4, 2e-4)  # a fresh process: rebuilt from the options, then loaded
    optimizer.load_state_dict(state['optimizer'])
    resumed = MultigridLR(optimizer, 24, **options)
    resumed.load_state_dict(state['scheduler'])
    assert _run(resumed, optimizer, 24, dict(lrs)) == uninterrupted


def test_baseline_sizes_give_the_paper_schedule_to_the_scheduler():
    scheduler = MultigridLR(_optimizer(1e-3), 60, baseline_patch_size=64, baseline_frames=15)
    assert scheduler.schedule == MultigridSchedule((32, 64), (7, 11, 15), 60)


def test_scheduler_refuses_a_misspelt_key_and_a_floor_above_the_lr():
    with pytest.raises(OptionError, match=r"MultigridLR: unknown key\(s\) warmup_iters.*'warmup_iter'"):
        MultigridLR(_optimizer(1e-3), 24, warmup_iters=5, **REDS)
    with pytest.raises(ValueError, match='MultigridLR.eta_min'):
        MultigridLR(_optimizer(1e-3, 1e-5), 24, eta_min=1e-4, **REDS)


def test_linear_scaling_rule():
    assert linear_scaling(16, 2e-4, 64) == pytest.approx(8e-4)
    assert linear_scaling(16, 2e-4, 32) == pytest.approx(4e-4)
    with pytest.raises(ValueError, match='batch'):
        linear_scaling(0, 2e-4, 64)


def test_importing_the_plugin_registers_the_scheduler():
    assert registry.components('lr_scheduler')['MultigridLR'] is MultigridLR


def test_spatial_lr_factors_start_the_stages_of_a_size_at_their_own_lr():
    """EDVR-M in the paper: its 32x32 stage starts at 2e-4 while the 64x64 one starts at the scaled LR."""
    optimizer = _optimizer(8e-4)
    scheduler = MultigridLR(optimizer, 8, spatial_sizes=[16, 32], temporal_sizes=[3, 5],
                            spatial_lr_factors=[0.25, 1.0])  # stages of 2: 16x3, 16x5, 32x3, 32x5
    lrs = _run(scheduler, optimizer, 8)
    # x = 1/8 inside stage 1: 0.25 x (1 + cos(pi/8)) / 2 = 0.25 x 0.96193977; last stage x = 1/2: 0.5
    expected = {1: 2e-4, 2: 2e-4 * 0.9619397662556434, 3: 2e-4, 5: 8e-4, 7: 8e-4, 8: 4e-4}
    for iteration, lr in expected.items():
        assert lrs[iteration] == pytest.approx([lr], rel=1e-12), iteration
    with pytest.raises(ValueError, match='MultigridLR.eta_min'):  # above the 32x32 stage's starting LR
        MultigridLR(_optimizer(8e-4), 8, spatial_sizes=[16, 32], temporal_sizes=[3, 5], eta_min=3e-4,
                    spatial_lr_factors=[0.25, 1.0])


# --- the options --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('given, total_iter, option, fragment', [
    ({'spatial_sizes': []}, 60, 'multigrid.spatial_sizes', 'non-empty list'),
    ({'spatial_sizes': [64, 32]}, 60, 'multigrid.spatial_sizes', 'strictly increasing'),
    ({'temporal_sizes': [7, 7, 15]}, 60, 'multigrid.temporal_sizes', 'strictly increasing'),
    ({'spatial_sizes': [0, 64]}, 60, 'multigrid.spatial_sizes', 'out of range'),
    ({'temporal_sizes': [-7, 15]}, 60, 'multigrid.temporal_sizes', 'out of range'),
    ({'spatial_sizes': [32, '64']}, 60, 'multigrid.spatial_sizes', 'expected list of int'),
    ({'order': 'synchronous'}, 60, 'multigrid.temporal_sizes', 'as many temporal sizes (3) as spatial sizes (2)'),
    ({'order': 'hierachical'}, 60, 'multigrid.order', "Did you mean 'hierarchical'"),
    ({'mode': 'spatial-only'}, 60, 'multigrid.mode', 'spatial_temporal'),
    ({'stage_iters': [30, 30]}, 60, 'multigrid.stage_iters', 'one iteration count per stage (6 stages)'),
    ({'stage_iters': [0, 10, 10, 10, 10, 20]}, 60, 'multigrid.stage_iters', 'out of range'),
    ({'stage_iters': [10, 10, 10, 10, 10, 20]}, 50, 'multigrid.stage_iters', 'adds up to 70, not to the 50'),
    ({'warmup_iter': -1}, 60, 'multigrid.warmup_iter', 'int >= 0'),
    ({'eta_min': -1.0e-7}, 60, 'multigrid.eta_min', 'float >= 0'),
    ({'form': 'cos'}, 60, 'multigrid.form', "'cosine'"),
    ({'spatial_sizes': None}, 60, 'multigrid.spatial_sizes', 'no baseline LR patch size'),
    ({}, 5, 'train.total_iter', 'at least the number of stages (6)'),
    ({'warmup': 5000}, 60, 'multigrid', "Did you mean 'warmup_iter'"),
    ({'spatial_lr_factors': [0.25]}, 60, 'multigrid.spatial_lr_factors', 'one factor per spatial size (2'),
    ({'spatial_lr_factors': [0.0, 1.0]}, 60, 'multigrid.spatial_lr_factors', 'out of range'),
])
def test_bad_options_are_refused_naming_the_option(given, total_iter, option, fragment):
    with pytest.raises(OptionError) as error:
        values = MULTIGRID.check({**REDS, **given}, prefix='multigrid')
        build_schedule(values, total_iter, 'multigrid', outside={'total_iter': 'train.total_iter'})
    message = str(error.value)
    assert message.startswith(f'{option}:') and fragment in message, message


def test_the_default_section_builds_the_paper_schedule():
    values = MULTIGRID.check(None)
    assert values == {'spatial_sizes': None, 'temporal_sizes': None, 'order': 'hierarchical',
                      'mode': 'spatial_temporal', 'stage_iters': None, 'warmup_iter': 0, 'eta_min': 0.0,
                      'form': 'cosine', 'spatial_lr_factors': None}
    schedule = build_schedule({**values, 'stage_iters': (5, 5, 5, 5, 5, 35)}, 60, baseline_patch_size=64,
                              baseline_frames=15)
    assert schedule(26) == (5, 64, 15) and schedule.stage_length(5) == 35


# --- one settings object per run -------------------------------------------------------------------------------------

def test_a_delayed_schedule_trains_the_baseline_shape_until_its_offset():
    """SSL's regularisation / MMagic's begin: 4 iterations at the configured 64 x 15, then the schedule."""
    schedule = MultigridSchedule((32, 64), (7, 15), 8)  # 4 stages of 2 iterations
    delayed = DelayedSchedule(schedule, baseline=(64, 15), offset=4)
    assert [delayed(t) for t in (1, 4, 5, 6, 7, 12, 13)] == [(-1, 64, 15), (-1, 64, 15), (0, 32, 7), (0, 32, 7),
                                                             (1, 32, 15), (3, 64, 15), (3, 64, 15)]
    assert delayed.total_iter == 12 and delayed.step(5) == 1 and delayed.step(3) == -1
    assert DelayedSchedule(schedule)(1) == schedule(1)  # no offset: the schedule itself
    with pytest.raises(ScheduleError) as error:
        DelayedSchedule(schedule, offset=2)
    assert error.value.field == 'offset'


def test_resolve_applies_the_offset_and_names_the_length_that_leaves_no_schedule():
    values = MULTIGRID.check(REDS)
    settings = resolve(values, 64, baseline_patch_size=64, baseline_frames=15, offset=4)
    assert settings.offset == 4 and settings.schedule == MultigridSchedule((32, 64), (7, 11, 15), 60)
    assert settings.training(4) == (-1, 64, 15) and settings.training(5) == (0, 32, 7)
    with pytest.raises(OptionError, match=r'^train.total_iter: 4 training iterations leave none for the multigrid '
                                          r'schedule after the 4 iterations before it starts'):
        resolve(values, 4, baseline_patch_size=64, baseline_frames=15, offset=4,
                outside={'total_iter': 'train.total_iter'})


def test_factors_are_checked_against_derived_spatial_sizes():
    """Given sizes: the section's own check; sizes derived from the baseline: ``resolve`` (one rule, once each)."""
    values = MULTIGRID.check({'spatial_lr_factors': [0.25]})  # nothing to compare with yet
    with pytest.raises(OptionError, match=r'^multigrid.spatial_lr_factors: \[0.25\] must give one factor per spatial '
                                          r'size \(2: \[32, 64\]\)'):
        resolve(values, 60, baseline_patch_size=64, baseline_frames=15)


def test_the_scheduler_reads_resolved_settings_without_resolving_again():
    settings = resolve(MULTIGRID.check({**REDS, 'warmup_iter': 8, 'eta_min': 1e-6}), 24)
    optimizer = _optimizer(8e-4, 2e-4)
    scheduler = MultigridLR(optimizer, settings=settings)
    assert scheduler.settings is settings and scheduler.schedule is settings.schedule
    assert _run(scheduler, optimizer, 24) == _run(*_pair(dict(warmup_iter=8, eta_min=1e-6, **REDS)), 24)
    assert copy.deepcopy(settings) is settings  # immutable: toolboxes' deep copies keep the one object
    with pytest.raises(OptionError, match='MultigridLR: takes either resolved settings or the multigrid keys'):
        MultigridLR(_optimizer(8e-4), 24, settings=settings)
    with pytest.raises(OptionError, match=r'^multigrid.eta_min: 1e-06 exceeds the lowest starting LR of a stage'):
        MultigridLR(_optimizer(1e-7), settings=settings)  # the floor against this optimizer's LRs


def _pair(options):
    optimizer = _optimizer(8e-4, 2e-4)
    return MultigridLR(optimizer, 24, **options), optimizer
