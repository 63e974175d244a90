"""The device cost model: cache key refusal, atomic round trip, lazy filling, traced layer lists and the sum.

Nothing here asserts a timing: tables are filled by a fake timer (or by hand), except one check that the real timer
replays a call and returns a finite positive number.
"""
import math
from collections import Counter

import pytest
import torch
from torch import nn

from effsr_core.cost_model import (CostModelError, CostTable, OpCall, conv_fields, get_backend, predict_calls,
                                   predict_latency, replay_arguments, time_call, trace_network)
from ssl_plugin.archs import SSLBasicVSR
from ssl_plugin.pruning.config import PruningConfig
from ssl_plugin.pruning.plan import PruningPlan
from ssl_plugin.pruning.pruner import StructuredPruner

NCHW = get_backend('eager-nchw')
CHANNELS_LAST = get_backend('eager-channels_last')
KEY = {'backend': 'eager-nchw', 'device': 'Test CPU', 'threads': 2, 'torch': '2.0', 'dtype': 'float32'}


class FakeTimer:
    """Prices a call by its function (conv2d 2 ms, anything else 0.5 ms) and counts what it was asked."""

    def __init__(self):
        self.asked = []

    def __call__(self, call, backend):
        self.asked.append(call.signature)
        return 2.0 if call.name.endswith('conv2d') else 0.5


def two_convs() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, stride=2, padding=1, groups=2))


def tiny_basicvsr() -> SSLBasicVSR:
    torch.manual_seed(0)
    return SSLBasicVSR(num_feat=8, num_block=2, upsample_feat=8).eval()


def test_a_table_of_another_key_is_refused_in_one_line_naming_what_differs(tmp_path):
    path = tmp_path / 'table.json'
    table = CostTable(NCHW, path, FakeTimer(), key=KEY)
    table.ensure(trace_network(two_convs(), (1, 3, 8, 8), NCHW).calls)
    with pytest.raises(CostModelError) as error:
        CostTable.open(NCHW, path, FakeTimer(), key=KEY | {'threads': 4, 'torch': '2.1'})
    message = str(error.value)
    assert '\n' not in message and "threads 2 -> 4" in message and "torch '2.0' -> '2.1'" in message
    assert 'device' not in message  # only what differs is named


def test_the_cache_round_trips_atomically_and_is_not_measured_again(tmp_path):
    path = tmp_path / 'table.json'
    calls = trace_network(two_convs(), (1, 3, 8, 8), NCHW).calls
    table = CostTable(NCHW, path, FakeTimer(), key=KEY)
    table.ensure(calls)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['table.json']  # no temporary file left behind
    timer = FakeTimer()
    reopened = CostTable.open(NCHW, path, timer, key=KEY)
    assert reopened.entries == table.entries and len(reopened) == 3  # conv, relu, conv
    assert predict_calls(calls, reopened).total_ms == predict_calls(calls, table).total_ms
    assert timer.asked == []


def test_missing_entries_are_measured_lazily_each_distinct_call_once(tmp_path):
    timer = FakeTimer()
    table = CostTable(NCHW, tmp_path / 'table.json', timer, key=KEY)
    small = trace_network(two_convs(), (1, 3, 8, 8), NCHW).calls
    assert table.ensure(small + small) == 3 and len(timer.asked) == 3
    assert table.ensure(small) == 0 and len(timer.asked) == 3
    larger = trace_network(two_convs(), (1, 3, 16, 16), NCHW).calls  # another input size: new entries
    assert table.ensure(larger) == 3 and len(timer.asked) == 6
    assert len(CostTable.open(NCHW, tmp_path / 'table.json', timer, key=KEY)) == 6


@pytest.mark.parametrize('backend, second_input', [(NCHW, 'contiguous'), (CHANNELS_LAST, 'channels_last')])
def test_the_layer_list_of_a_two_conv_network(backend, second_input):
    trace = trace_network(two_convs(), (1, 3, 16, 20), backend)
    assert trace.op_counts() == Counter({'torch.nn.functional.conv2d': 2, 'torch.nn.functional.relu': 1})
    first, second = trace.conv_layers()
    assert first == {'in_channels': 3, 'out_channels': 8, 'kernel': (3, 3), 'stride': (1, 1), 'padding': (1, 1),
                     'groups': 1, 'batch': 1, 'height': 16, 'width': 20, 'memory_format': 'contiguous'}
    assert second == {'in_channels': 8, 'out_channels': 4, 'kernel': (3, 3), 'stride': (2, 2), 'padding': (1, 1),
                      'groups': 2, 'batch': 1, 'height': 16, 'width': 20, 'memory_format': second_input}
    assert trace.frames == 1 and trace.unreplayable == ()


def _convs(trace, kernel=None) -> Counter:
    return Counter((c['in_channels'], c['out_channels'], c['kernel'][0]) for c in trace.conv_layers()
                   if kernel is None or c['kernel'][0] != 7)


def test_the_layer_list_of_a_tiny_dense_basicvsr():
    net = tiny_basicvsr()
    trace = trace_network(net.pruned(PruningPlan(arch=net.config, kept={})), (1, 2, 3, 16, 16), NCHW)
    spynet = Counter({(8, 32, 7): 12, (32, 64, 7): 12, (64, 32, 7): 12, (32, 16, 7): 12, (16, 2, 7): 12})
    rest = Counter({(11, 8, 3): 4, (8, 8, 3): 16 + 2, (16, 8, 1): 2, (8, 32, 3): 4, (8, 3, 3): 2})
    assert _convs(trace) == spynet + rest
    heights = Counter((c['height'], c['width']) for c in trace.conv_layers() if c['kernel'][0] != 7)
    assert heights == {(16, 16): 4 + 16 + 2 + 2, (32, 32): 2, (64, 64): 4}  # trunks, fusion, upconv1 | upconv2 | HR
    assert trace.frames == 2 and trace.op_counts()['torch.nn.functional.grid_sample'] == 2 * 6 * 1 + 2
    assert not any(name.endswith(('index_select', 'index_add_')) for name in trace.op_counts())


def test_a_plan_gives_fewer_channels_and_the_rsc_channel_ops():
    dense = tiny_basicvsr()
    compact = dense.pruned(StructuredPruner(PruningConfig(ratio=0.5)).select(dense)).eval()
    trace = trace_network(compact, (1, 2, 3, 16, 16), NCHW)
    expected = Counter()
    for trunk in (compact.backward_trunk, compact.forward_trunk):
        expected[(trunk.conv_in.in_channels, trunk.conv_in.out_channels, 3)] += 2
        for block in trunk.blocks:
            for conv in (block.conv1, block.conv2):
                expected[(conv.in_channels, conv.out_channels, 3)] += 2
    for conv in (compact.fusion, compact.upconv1, compact.upconv2, compact.conv_hr, compact.conv_last):
        expected[(conv.in_channels, conv.out_channels, conv.kernel_size[0])] += 2
    assert _convs(trace, kernel='not 7') == expected
    dense_trace = trace_network(dense.pruned(PruningPlan(arch=dense.config, kept={})), (1, 2, 3, 16, 16), NCHW)
    channels = lambda t: sum(c['in_channels'] * c['out_channels'] for c in t.conv_layers())  # noqa: E731
    assert channels(trace) < channels(dense_trace)
    blocks = [b for trunk in (compact.backward_trunk, compact.forward_trunk) for b in trunk.blocks]
    counts = trace.op_counts()
    assert counts['torch.Tensor.index_select'] == 2 * sum(b.in_index is not None for b in blocks)
    assert counts['torch.Tensor.index_add_'] == 2 * sum(b.out_index is not None for b in blocks)


def test_the_prediction_is_the_sum_of_the_entries_of_a_hand_made_table():
    trace = trace_network(tiny_basicvsr(), (1, 2, 3, 16, 16), CHANNELS_LAST)

    def refuse(call, backend):
        raise AssertionError('nothing may be timed')

    table = CostTable(CHANNELS_LAST, timer=refuse, key=KEY)
    for call in trace.calls:
        table.entries[call.signature] = {'op': call.name, 'ms': 2.0 if call.name.endswith('conv2d') else 0.25}
    prediction = predict_calls(trace.calls, table, trace.frames)
    convs = len(trace.conv_layers())
    assert prediction.total_ms == pytest.approx(2.0 * convs + 0.25 * (len(trace.calls) - convs))
    assert prediction.per_frame_ms == pytest.approx(prediction.total_ms / 2)
    assert prediction.by_op['torch.nn.functional.conv2d'] == pytest.approx(2.0 * convs)
    assert predict_latency(tiny_basicvsr(), (1, 2, 3, 16, 16), table).total_ms == prediction.total_ms


def test_replayed_arguments_keep_the_layout_and_plausible_indices():
    x = torch.rand(1, 8, 4, 4).to(memory_format=torch.channels_last)
    call = OpCall.record(torch.Tensor.index_add_, (x, 1, torch.tensor([1, 6]), torch.rand(1, 2, 4, 4)), {})
    target, dim, index, source = replay_arguments(call, torch.device('cpu'))[0]
    assert target.stride() == x.stride() and dim == 1 and index.tolist() == [0, 7] and source.shape == (1, 2, 4, 4)
    grid_call = OpCall.record(torch.nn.functional.grid_sample, (torch.rand(1, 2, 5, 6), torch.rand(1, 5, 6, 2)),
                              {'align_corners': True})
    _, grid = replay_arguments(grid_call, torch.device('cpu'))[0]
    assert grid.shape == (1, 5, 6, 2) and grid[0, 0, 0].tolist() == pytest.approx([-1, -1], abs=0.34)
    assert conv_fields(grid_call) is None


def test_the_real_timer_replays_a_call():
    call = trace_network(two_convs(), (1, 3, 8, 8), NCHW).calls[0]
    ms = time_call(call, NCHW, budget_ms=1.0)
    assert math.isfinite(ms) and ms > 0


def test_unknown_and_unavailable_backends_are_refused_in_one_line():
    with pytest.raises(CostModelError, match=r"backend 'tensorrt' is unknown; choose from eager-nchw, "):
        get_backend('tensorrt')
    if not torch.cuda.is_available():
        with pytest.raises(CostModelError, match='needs a CUDA GPU, and none is available; use eager-nchw'):
            get_backend('cuda-eager-nchw')
