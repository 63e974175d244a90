"""``python -m ssl_plugin.show_plan``: what a pruned network kept (summary, MACs, PNG, JSON), run in-process on
BasicSR and MMagic checkpoints of a small compact SSLBasicVSR, and its one-line refusals (nothing written)."""
import json

import pytest
import torch

from ssl_plugin.archs import SSLBasicVSR
from ssl_plugin.pruning.config import PruningConfig
from ssl_plugin.pruning.plan import PruningPlan
from ssl_plugin.pruning.pruner import StructuredPruner
from ssl_plugin.pruning.summary import describe_plan, summarize_plan
from ssl_plugin.show_plan import main

NUM_FEAT, NUM_BLOCK, UPSAMPLE_FEAT = 8, 2, 8
#: a hand-made plan: known kept indices in both branches and the upsampler
KEPT = {'backward.0.in': [0, 1, 2, 3, 4, 5], 'backward.1.mid': [1, 3, 5, 7], 'backward.1.out': [0, 7],
        'forward.0.out': [0, 2, 4], 'forward.1.in': [7], 'forward.1.mid': [0, 1, 2, 3, 4],
        'upconv1': [0, 1, 2, 3], 'upconv2': [0, 1], 'conv_hr': [0, 1, 2, 3, 4, 5]}
EXTRA = {'selection': 'min_global', 'round_to': None, 'group_score': 'sum', 'units': ['in', 'mid', 'out', 'upsampler']}
LR = '32x32'


def _dense(seed=0, **changes):
    torch.manual_seed(seed)
    return SSLBasicVSR(**{'num_feat': NUM_FEAT, 'num_block': NUM_BLOCK, 'upsample_feat': UPSAMPLE_FEAT, **changes})


def _plan(net, kept=None, **changes):
    return PruningPlan(**{'arch': net.config, 'kept': KEPT if kept is None else kept, 'method': 'ssl', 'ratio': 0.3,
                          'extra': EXTRA, **changes})


def _save(state, path, toolbox='basicsr'):
    if toolbox == 'basicsr':
        torch.save({'params': state}, path)
    else:
        torch.save({'state_dict': {'generator.' + k: v for k, v in state.items()}, 'meta': {}}, path)
    return str(path)


@pytest.fixture
def out(tmp_path):
    folder = tmp_path / 'out'
    folder.mkdir()
    return folder


def _run(capsys, *argv):
    assert main([str(a) for a in argv]) == 0
    return capsys.readouterr().out


# ------------------------------------------------------------------------------------------- the summary
def test_the_summary_counts_the_units_the_plan_keeps():
    net = _dense()
    summary = summarize_plan(_plan(net), net)
    sizes = net.prunable_groups()
    assert {name: g['size'] for name, g in summary['groups'].items()} == sizes
    assert {name: g['kept'] for name, g in summary['groups'].items()} == {
        name: len(KEPT.get(name, range(size))) for name, size in sizes.items()}
    assert summary['branches']['backward'] == {'hidden': 1.0, 'in': [0.75, 1.0], 'mid': [1.0, 0.5],
                                               'out': [1.0, 0.25]}
    assert summary['branches']['forward'] == {'hidden': 1.0, 'in': [1.0, 0.125], 'mid': [1.0, 0.625],
                                              'out': [0.375, 1.0]}
    assert summary['upsampler'] == {'upconv1': 0.5, 'upconv2': 0.25, 'conv_hr': 0.75}
    hidden = sum(size for name, size in sizes.items() if name.endswith('.hidden'))  # not among the SSL units
    pruned = sum(size - len(KEPT[name]) for name, size in sizes.items() if name in KEPT)
    assert summary['total_units'] == sum(sizes.values()) - hidden
    assert summary['kept_units'] == summary['total_units'] - pruned
    assert summary['latency'] is None
    assert describe_plan(summary) == 'SSL, min_global, ratio 0.3'
    json.dumps(summary)  # plain data


def test_under_a_pruned_hidden_state_in_and_out_count_the_channels_the_branch_keeps():
    net = _dense()
    plan = StructuredPruner(PruningConfig(method='assl', ratio=0.5)).select(net)
    summary = summarize_plan(plan, net)
    for branch in ('forward', 'backward'):
        kept = summary['branches'][branch]
        assert kept['hidden'] == len(plan.kept['forward.hidden' if branch == 'forward' else 'backward.hidden']) / 8
        assert kept['in'] == kept['out'] == [kept['hidden']] * NUM_BLOCK  # ASSL prunes no in / out group itself
        assert summary['groups'][f'{branch}.0.in']['kept'] == NUM_FEAT
    assert summary['units'] == ['hidden', 'mid', 'upsampler']
    assert describe_plan(summary) == 'ASSL, min_local, ratio 0.5'


# ------------------------------------------------------------------------------------------- the command
@pytest.mark.parametrize('toolbox', ['basicsr', 'mmagic'])
def test_a_compact_checkpoint_gives_its_plan_macs_picture_and_json(tmp_path, out, capsys, toolbox):
    net = _dense()
    compact = net.pruned(_plan(net))
    checkpoint = _save(compact.state_dict(), tmp_path / 'compact.pth', toolbox)
    png, report = out / 'kept.png', out / 'kept.json'
    stdout = _run(capsys, checkpoint, '--png', png, '--json', report, '--lr-size', LR)
    summary = json.loads(report.read_text())
    assert {name: g['kept'] for name, g in summary['groups'].items() if name in KEPT} == {
        name: len(kept) for name, kept in KEPT.items()}
    assert summary['checkpoint'] == checkpoint and summary['method'] == 'ssl' and summary['ratio'] == 0.3
    macs = summary['macs']
    assert 0 < macs['pruned'] < macs['dense'] and macs['spynet'] > 0 and macs['lr_size'] == [32, 32]
    assert png.read_bytes().startswith(b'\x89PNG')
    assert summary == json.loads(json.dumps(summary))
    for text in ('forward network: hidden state 8/8', 'backward network', 'MACs per frame at LR 32x32',
                 'upsampling network: upconv1 4/8 pixel-shuffle groups, upconv2 2/8 pixel-shuffle groups, conv_hr 6/8',
                 'plan: SSL, min_global, ratio 0.3', f'Wrote {png}'):
        assert text in stdout
    assert '  in   6 8' in stdout  # backward blocks 0 and 1 keep 6 and 8 input channels


def test_nothing_is_written_without_png_or_json(tmp_path, capsys):
    net = _dense()
    checkpoint = _save(net.pruned(_plan(net)).state_dict(), tmp_path / 'compact.pth')
    stdout = _run(capsys, checkpoint, '--lr-size', LR)
    assert 'kept' in stdout and 'Wrote' not in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ['compact.pth']


def test_a_latency_plan_shows_its_target_and_the_device_it_was_predicted_for(tmp_path, out, capsys):
    net = _dense(bidirectional=False)
    record = {'target': '2x speed-up on eager-channels_last at LR 16x16', 'speedup': 2.0, 'ms': None,
              'backend': 'eager-channels_last', 'lr_size': [16, 16], 'frames': 2, 'step': 1,
              'key': {'device': 'another-cpu'}, 'dense_ms': 4.0, 'predicted_ms': 2.0, 'predicted_speedup': 2.0,
              'ratio': 0.42}
    kept = {name: idx for name, idx in KEPT.items() if not name.startswith('backward')}
    plan = _plan(net, kept, ratio=0.42, extra={**EXTRA, 'latency': record})
    checkpoint = _save(net.pruned(plan).state_dict(), tmp_path / 'uni.pth', 'mmagic')
    stdout = _run(capsys, checkpoint, '--json', out / 'uni.json', '--png', out / 'uni.png', '--lr-size', LR)
    summary = json.loads((out / 'uni.json').read_text())
    assert summary['latency'] == record and list(summary['branches']) == ['forward']
    assert 'latency target of the plan: 2x speed-up on eager-channels_last at LR 16x16' in stdout
    assert 'another device' in stdout and 'another-cpu' in summary['latency_device']
    assert 'backward network' not in stdout
    assert (out / 'uni.png').read_bytes().startswith(b'\x89PNG')


def test_predict_latency_prices_both_networks_on_the_cost_table(tmp_path, out, capsys, monkeypatch):
    monkeypatch.setattr('effsr_core.cost_model.table.time_call', lambda call, backend: 0.01)  # nothing timed
    net = _dense()
    plan = StructuredPruner(PruningConfig(ratio=0.5)).select(net)
    checkpoint = _save(net.pruned(plan).state_dict(), tmp_path / 'compact.pth')
    table = tmp_path / 'table.json'
    stdout = _run(capsys, checkpoint, '--predict-latency', '--cost-table', table, '--json', out / 's.json',
                  '--lr-size', LR)
    predicted = json.loads((out / 's.json').read_text())['predicted']
    assert predicted['backend'] == 'eager-nchw' and predicted['table'] == str(table) and table.is_file()
    assert predicted['dense_ms'] > 0 and predicted['pruned_ms'] > 0
    assert 'predicted here (eager-nchw' in stdout


# ------------------------------------------------------------------------------------------- refusals
def _basicsr_basicvsr_state():
    from effsr_core import compat

    compat.install()
    from basicsr.archs.basicvsr_arch import BasicVSR

    return BasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK, spynet_path=None).state_dict()


def _dense_with_pending():
    net = _dense()
    net.pending_plan = _plan(net)
    return net.state_dict()


@pytest.mark.parametrize('make_state, argument, words', [
    (_basicsr_basicvsr_state, 'CKPT', 'not an SSL-family network'),
    (lambda: _dense().state_dict(), 'CKPT', 'not pruned yet'),
    (_dense_with_pending, 'CKPT', 'would prune 39 of 136 units'),
], ids=['basicsr-basicvsr', 'dense', 'dense-with-pending-selection'])
def test_a_checkpoint_without_a_pruned_plan_is_refused(tmp_path, out, capsys, make_state, argument, words):
    checkpoint = _save(make_state(), tmp_path / 'net.pth')
    with pytest.raises(SystemExit) as exit_:
        main([checkpoint, '--png', str(out / 'x.png'), '--json', str(out / 'x.json'), '--lr-size', LR])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_.value.code == 2 and f'argument {argument}: ' in error and words in error and checkpoint in error
    assert list(out.iterdir()) == []


@pytest.mark.parametrize('arguments, argument, words', [
    (['{missing}'], 'CKPT', 'not found'),
    (['{text}'], 'CKPT', 'not a readable PyTorch checkpoint'),
    (['{ckpt}', '--png', '{out}/no/such/folder/x.png'], '--png', 'folder not found'),
    (['{ckpt}', '--json', '{out}/no/such/folder/x.json'], '--json', 'folder not found'),
    (['{ckpt}', '--png', '{out}/x.jpg'], '--png', 'does not end in .png'),
    (['{ckpt}', '--cost-table', '{out}/t.json'], '--cost-table', 'needs --predict-latency'),
    (['{ckpt}', '--lr-size', '1x32x32'], '--lr-size', '3 channels'),
], ids=['missing', 'not-a-checkpoint', 'png-folder', 'json-folder', 'png-suffix', 'cost-table', 'lr-channels'])
def test_bad_arguments_are_refused_in_one_line_before_any_work(tmp_path, out, capsys, arguments, argument, words):
    net = _dense()
    paths = {'ckpt': _save(net.pruned(_plan(net)).state_dict(), tmp_path / 'compact.pth'),
             'missing': str(tmp_path / 'missing.pth'), 'text': str(tmp_path / 'notes.txt'), 'out': str(out)}
    (tmp_path / 'notes.txt').write_text('not a checkpoint')
    with pytest.raises(SystemExit) as exit_:
        main([a.format(**paths) for a in arguments])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_.value.code == 2 and error.startswith(f'python -m ssl_plugin.show_plan: error: argument {argument}: ')
    assert words in error
    assert list(out.iterdir()) == []
