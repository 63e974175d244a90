"""Latency-targeted SSL selection (``pruning.latency``) on a deterministic cost table: a timer whose conv latency is
a staircase in channels (blocks of 8), so the expected choices are known without timing anything."""
import math

import pytest
import torch

from effsr_core.cost_model import conv_fields, fastest_widths
from effsr_core.options import OptionError
from ssl_plugin.archs.ssl_basicvsr_arch import SSLBasicVSR
from ssl_plugin.pruning.config import LatencyTarget, PruningConfig
from ssl_plugin.pruning.latency import LatencyModel, open_latency_model, other_device, reachable
from ssl_plugin.pruning.pruner import StructuredPruner

BLOCK = 8


def staircase_timer(call, backend):
    """A conv costs in_blocks x out_blocks x pixels (channels padded to blocks of 8); everything else ~nothing."""
    fields = conv_fields(call)
    if fields is None:
        return 1e-4
    padded = lambda c: math.ceil(c / BLOCK) * BLOCK  # noqa: E731
    return 1e-6 * padded(fields['in_channels']) * padded(fields['out_channels']) * fields['height'] * fields['width']


def _target(tmp_path, **changes):
    values = dict(speedup=2.0, lr_size=(16, 16), frames=2, step=1, table=str(tmp_path / 'table.json'))
    return LatencyTarget(**(values | changes))


@pytest.fixture(scope='module')
def network():
    torch.manual_seed(0)
    net = SSLBasicVSR(num_feat=16, num_block=2)
    with torch.no_grad():  # distinct importances, so the selection is not decided by ties
        for name in net.prunable_groups():
            for factor in net.unit_factors(name, torch.arange(net.prunable_groups()[name])):
                factor.copy_(torch.rand_like(factor) + 0.1)
    return net


def test_fastest_widths_keep_what_a_step_holds_for_free():
    latencies = {8: 1.0, 16: 2.0, 24: 2.0, 32: 1.9, 40: 4.0}  # 24 costs what 16 costs; 32 is faster still
    choice = fastest_widths(latencies)
    assert choice[1] == 8 and choice[8] == 8
    assert choice[9] == 32 and choice[17] == 32 and choice[32] == 32  # the fastest width at least as wide
    assert choice[33] == 40
    assert fastest_widths({4: 1.0, 8: 1.005})[3] == 8  # within the tolerance: the wider one


def test_a_speedup_target_is_met_with_widths_on_the_device_steps(tmp_path, network):
    config = PruningConfig(latency=_target(tmp_path))
    model = LatencyModel(config.latency, timer=staircase_timer)
    plan = StructuredPruner(config, model).select(network)
    record = plan.extra['latency']
    assert record['predicted_speedup'] >= 2.0
    assert record['predicted_ms'] == pytest.approx(model.predict_ms(network.pruned(plan)), rel=1e-3)
    for name, kept in plan.kept.items():  # step=1 measured every width: the staircase moved each to a block end
        assert len(kept) % BLOCK == 0, (name, len(kept))
    assert plan.ratio == record['ratio'] and 0 < plan.ratio < 1
    assert record['backend'] == 'eager-channels_last' and record['key'] == model.table.key


def test_the_most_important_units_are_the_ones_kept(tmp_path, network):
    config = PruningConfig(latency=_target(tmp_path))  # min_global: in every group the highest L1 scores stay
    plan = StructuredPruner(config, LatencyModel(config.latency, timer=staircase_timer)).select(network)
    assert plan.kept
    for name, kept in plan.kept.items():
        scores = network.unit_importance(name)
        pruned = [i for i in range(len(scores)) if i not in kept]
        assert scores[list(kept)].min() >= scores[pruned].max(), name


def test_a_latency_in_ms_and_the_local_baseline_take_the_same_target(tmp_path, network):
    dense = LatencyModel(_target(tmp_path), timer=staircase_timer)
    dense_ms, _ = reachable(network, network.prunable_groups(), dense)
    for method in ('ssl', 'l1_norm'):
        config = PruningConfig(method=method, latency=_target(tmp_path, speedup=None, ms=dense_ms / 1.5))
        plan = StructuredPruner(config, LatencyModel(config.latency, timer=staircase_timer)).select(network)
        assert plan.extra['latency']['predicted_ms'] <= dense_ms / 1.5


def test_a_target_out_of_reach_is_refused_with_the_largest_speedup(tmp_path, network):
    config = PruningConfig(latency=_target(tmp_path, speedup=50.0))
    with pytest.raises(OptionError, match=r'pruning.latency.speedup: 50x is out of reach .* gives at most [\d.]+x'):
        StructuredPruner(config, LatencyModel(config.latency, timer=staircase_timer)).select(network)


@pytest.mark.parametrize('pruning, message', [
    ({'ratio': 0.3, 'latency': {'speedup': 2.0}}, r'pruning.ratio: 0.3 given together with pruning.latency'),
    ({'round_to': 8, 'latency': {'speedup': 2.0}}, r'pruning.round_to: 8 given together with pruning.latency'),
    ({'latency': {'backend': 'eager-nchw'}}, r'pruning.latency: give exactly one target'),
    ({'latency': {'speedup': 2.0, 'ms': 10.0}}, r'pruning.latency: give exactly one target'),
    ({'latency': {'speedup': 0.5}}, r'pruning.latency.speedup: 0.5 is out of range'),
    ({'latency': {'speedup': 2.0, 'backend': 'tensorrt'}}, r"pruning.latency.backend: 'tensorrt' is not one of"),
    ({'latency': {'speedup': 2.0, 'lr_size': [64]}}, r'pruning.latency.lr_size: \[64\] is not \(height, width\)'),
    ({'latency': {'speedpu': 2.0}}, r"Did you mean 'speedup'"),
])
def test_bad_latency_options_are_refused_in_one_line(pruning, message):
    with pytest.raises(OptionError, match=message):
        PruningConfig.from_options(pruning)


def test_without_a_target_the_ratio_defaults_to_one_half():
    assert PruningConfig.from_options({}).ratio == 0.5 and PruningConfig.from_options({}).latency is None
    assert PruningConfig.from_options({'latency': {'speedup': 2.0}}).ratio is None


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the refusal on a machine without a GPU')
def test_a_backend_without_its_device_is_refused(tmp_path):
    with pytest.raises(OptionError, match=r'pruning.latency.backend: .*needs a CUDA GPU'):
        open_latency_model(_target(tmp_path, backend='cuda-eager-nchw'))


def test_a_table_of_another_key_is_refused_and_another_device_is_named(tmp_path, network):
    config = PruningConfig(latency=_target(tmp_path))
    model = LatencyModel(config.latency, timer=staircase_timer)
    plan = StructuredPruner(config, model).select(network)
    assert other_device(plan.extra['latency']) is None  # predicted here
    moved = dict(plan.extra['latency'], key=dict(model.table.key, threads=64))
    assert 'threads 64 ->' in other_device(moved)
    model.table.key = dict(model.table.key, threads=64)
    model.table.save()
    with pytest.raises(OptionError, match=r'pruning.latency.table: cost table .* another key \(threads 64 ->'):
        open_latency_model(config.latency)


def test_a_run_says_once_that_its_plan_was_predicted_for_another_device(tmp_path, network):
    from ssl_plugin.lifecycle import SSLPruningLifecycle
    from ssl_plugin.pruning.plan import PruningPlan

    config = PruningConfig(latency=_target(tmp_path))
    model = LatencyModel(config.latency, timer=staircase_timer)
    plan = StructuredPruner(config, model).select(network)
    moved = PruningPlan.coerce(dict(plan.to_dict(), extra=dict(
        plan.extra, latency=dict(plan.extra['latency'], key=dict(model.table.key, threads=64)))))
    lines = []
    lifecycle = SSLPruningLifecycle({'latency': {'speedup': 2.0, 'lr_size': [16, 16], 'frames': 2, 'step': 1,
                                                 'table': str(tmp_path / 'table.json')}},
                                    str(tmp_path / 'teacher.pth'), str(tmp_path / 'curve.csv'), log=lines.append)
    compact = network.pruned(moved)
    assert not lifecycle.needs_pruning(5000, compact) and not lifecycle.needs_pruning(5001, compact)
    assert len(lines) == 1 and 'predicted for another device or version (threads 64 ->' in lines[0]
    here = network.pruned(plan)
    lifecycle.say_if_other_device(here)  # predicted on this machine: nothing to say
    assert len(lines) == 1
