"""NTIRE 2024-2026 protocol: fvcore FLOPs, the weighted-exponential score, the PSNR threshold and the CLI options."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from effsr_core import compat
from effsr_core.profile import main
from effsr_core.profiling import count_ops
from effsr_core.profiling.scoring import PROTOCOLS, final_score, format_scores, score_models, score_terms
from profile_files import write_image_pair, write_rfdn_options

compat.install()


def conv_macs(conv: nn.Conv2d, positions: int) -> int:
    return conv.out_channels * conv.in_channels // conv.groups * conv.kernel_size[0] * conv.kernel_size[1] * positions


def fake_result(runtime_ms, gflops, mparams, psnr=None):
    """A profile result holding only what the score reads."""
    return {'runtime': {'median_ms': runtime_ms}, 'ops': {'counted': {'fvcore_flops': gflops * 1e9}},
            'params': {'counted': mparams * 1e6}, 'quality': None if psnr is None else {'psnr': psnr}}


def test_score_formula_by_hand():
    weights = PROTOCOLS['ntire2024'].weights
    terms = score_terms({'runtime_ms': 10, 'flops_g': 20, 'params_m': 0.5},
                        {'runtime_ms': 20, 'flops_g': 10, 'params_m': 0.25}, weights)
    assert terms == pytest.approx({'runtime_ms': math.e, 'flops_g': math.exp(4), 'params_m': math.exp(4)})
    assert final_score(terms, weights) == pytest.approx(0.7 * math.e + 0.15 * math.exp(4) + 0.15 * math.exp(4))
    weights_2026 = PROTOCOLS['ntire2026'].weights
    assert final_score(terms, weights_2026) == pytest.approx(0.8 * math.e + 0.1 * math.exp(4) + 0.1 * math.exp(4))


@pytest.mark.parametrize('year', ['ntire2024', 'ntire2025', 'ntire2026'])
def test_the_official_baseline_scores_exp_2_on_every_term(year):
    protocol = PROTOCOLS[year]
    assert sum(protocol.weights.values()) == pytest.approx(1)
    section = score_models({protocol.baseline: fake_result(protocol.runtime_ms, protocol.flops_g, protocol.params_m)},
                           year)
    item = section['models'][protocol.baseline]
    assert item['terms'] == pytest.approx(dict.fromkeys(protocol.weights, math.exp(2)))
    assert round(item['score'], 4) == 7.3891  # the READMEs' example
    assert section['baseline']['official'] and section['weights'] == protocol.weights


def test_published_constants():
    figures = {year: (p.baseline, p.runtime_ms, p.flops_g, p.params_m, p.weights['runtime_ms'], p.psnr_valid_db)
               for year, p in PROTOCOLS.items()}
    assert figures == {'ntire2024': ('RLFN', 13.54, 19.70, 0.317, 0.7, 26.90),
                       'ntire2025': ('EFDN', 16.69, 16.70, 0.276, 0.7, 26.90),
                       'ntire2026': ('SPAN', 5.59, 9.83, 0.151, 0.8, 26.90)}


def test_a_profiled_baseline_scores_sum_of_weights_times_e_squared_and_halving_helps():
    results = {'base': fake_result(8.0, 12.0, 0.2), 'half': fake_result(4.0, 6.0, 0.1)}
    section = score_models(results, 'ntire2026', baseline_model='base')
    assert section['baseline']['figures'] == pytest.approx({'runtime_ms': 8.0, 'flops_g': 12.0, 'params_m': 0.2})
    assert section['models']['base']['score'] == pytest.approx(sum(PROTOCOLS['ntire2026'].weights.values())
                                                               * math.exp(2))
    assert section['models']['half']['score'] == pytest.approx(math.e)
    assert list(section['models']) == ['half', 'base'] and section['models']['half']['rank'] == 1


def test_models_under_the_psnr_threshold_are_not_ranked():
    results = {'fast-bad': fake_result(1.0, 1.0, 0.01, psnr=26.80), 'ok': fake_result(10.0, 10.0, 0.2, psnr=26.90),
               'unchecked': fake_result(12.0, 10.0, 0.2), 'good': fake_result(11.0, 10.0, 0.2, psnr=27.3)}
    section = score_models(results, 'ntire2025')
    models = section['models']
    meets = [models[name]['meets_threshold'] for name in ('fast-bad', 'ok', 'unchecked', 'good')]
    assert meets == [False, True, None, True]
    assert {name: item['rank'] for name, item in models.items()} == {'ok': 1, 'good': 2, 'unchecked': 3,
                                                                     'fast-bad': None}
    assert list(models)[-1] == 'fast-bad'
    table = format_scores(section)
    assert 'not ranked' in table and '26.80 <' in table
    assert section['psnr_threshold_db'] == 26.90


def test_missing_runtime_is_reported():
    result = fake_result(1.0, 1.0, 0.1)
    result['runtime'] = None
    with pytest.raises(ValueError, match='runtime_ms was not measured'):
        score_models({'a': result}, 'ntire2024')


class PlainConvNet(nn.Module):
    """Convs with bias, ReLU, a residual add, a sigmoid gate and pixel shuffle: fvcore counts only the convs."""

    def __init__(self):
        super().__init__()
        self.head = nn.Conv2d(3, 8, 3, padding=1)
        self.body = nn.Conv2d(8, 8, 3, padding=1)
        self.gate = nn.Conv2d(8, 8, 1)
        self.tail = nn.Conv2d(8, 3 * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x):
        feat = torch.relu(self.head(x))
        feat = feat + self.body(feat)
        feat = feat * torch.sigmoid(self.gate(feat))
        return self.shuffle(self.tail(feat))


def test_fvcore_flops_are_the_conv_macs_of_a_plain_conv_network():
    net = PlainConvNet()
    counted = count_ops(net, torch.rand(1, 3, 16, 16)).counted
    expected = sum(conv_macs(conv, 16 * 16) for conv in (net.head, net.body, net.gate, net.tail))
    assert counted.fvcore_flops == counted.conv_macs == expected
    assert counted.ntire_flops > counted.fvcore_flops  # bias and ReLU count in the 2023 convention only


@pytest.mark.parametrize('module, expected', [
    (nn.Linear(4 * 8 * 8, 5), 2 * 256 * 5),  # multiply-adds (fvcore's linear / addmm)
    (nn.BatchNorm2d(4), 2 * 512),  # eval batch norm with an affine weight: 2 per element
    (nn.InstanceNorm2d(4, affine=True), 5 * 512),  # fvcore's norm estimate
    (nn.LayerNorm(8), 5 * 512),
    (nn.Upsample(scale_factor=2, mode='bilinear'), 4 * 2048),  # 4 per output element
    (nn.AdaptiveAvgPool2d(1), 512),  # 1 per input element
    (nn.MaxPool2d(2), 0),  # no handler in fvcore: skipped
    (nn.Softmax(dim=1), 0),
])
def test_fvcore_handles_other_ops_and_skips_the_rest(module, expected):
    inputs = torch.rand(2, 4, 8, 8)
    if isinstance(module, nn.Linear):
        module = nn.Sequential(nn.Flatten(), module)
    for use_meta in (True, False):
        assert count_ops(module, inputs, use_meta=use_meta).counted.fvcore_flops == expected


@pytest.mark.parametrize('arguments, message', [
    (['--score', 'ntire2023'], 'argument --score: invalid choice'),
    (['--score-baseline', 'a'], 'argument --score-baseline: needs --score'),
    (['--score', 'ntire2024', '--score-baseline', 'nobody'], "argument --score-baseline: no profiled model is named "
                                                             "'nobody' (models: a)"),
    (['--score', 'ntire2024', '--skip', 'runtime'], 'argument --score: the score needs the runtime'),
])
def test_cli_refuses_bad_score_options_before_measuring(tmp_path, capsys, arguments, message):
    options = write_rfdn_options(tmp_path / 'rfdn.yml', num_feat=8)
    with pytest.raises(SystemExit) as exit_info:
        main(['--model', f'a={options}', '--device', 'cpu', *arguments])
    errors = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in errors and 'building' not in errors


def test_cli_scores_against_a_profiled_baseline_and_marks_the_threshold(tmp_path, capsys):
    small, large = write_rfdn_options(tmp_path / 'small.yml', 8), write_rfdn_options(tmp_path / 'large.yml', 16)
    gt_dir, lq_dir = write_image_pair(tmp_path)
    out = tmp_path / 'profile.json'
    main(['--model', f'small={small}', '--model', f'large={large}', '--input-size', '3x32x32', '--device', 'cpu',
          '--skip', 'memory', '--runtime-trials', '1', '--warmup', '0', '--dataset-gt', str(gt_dir),
          '--dataset-lq', str(lq_dir), '--score', 'ntire2026', '--score-baseline', 'large', '--json', str(out)])
    printed = capsys.readouterr().out
    assert 'fvcore FLOPs [G] (1/MAC)' in printed and 'NTIRE 2026 score' in printed and 'not ranked' in printed
    report = json.loads(out.read_text())
    score = report['score']
    assert score['baseline'] == {'name': 'large', 'official': False, 'measured_on': 'this machine (profiled model)',
                                 'figures': pytest.approx({
                                     'runtime_ms': report['results']['large']['runtime']['median_ms'],
                                     'flops_g': report['results']['large']['ops']['counted']['fvcore_flops'] / 1e9,
                                     'params_m': report['results']['large']['params']['counted'] / 1e6})}
    assert score['weights'] == {'runtime_ms': 0.8, 'flops_g': 0.1, 'params_m': 0.1}
    assert score['models']['large']['score'] == pytest.approx(math.exp(2))
    assert score['models']['small']['terms']['params_m'] < math.exp(2)
    # random weights are far below 26.90 dB on the random test image: neither model is ranked
    assert all(item['meets_threshold'] is False and item['rank'] is None for item in score['models'].values())
