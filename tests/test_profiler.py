"""Tests of the NTIRE-style efficiency profiler (CPU, deterministic; timings are only checked to exist)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from effsr_core import compat
from effsr_core.archs.rfdn_arch import RFDN
from effsr_core.profile import main, parse_model_spec
from effsr_core.networks import build_model_from_options, is_video_options, load_checkpoint
from effsr_core.profiling import (PairedImageFolders, ProfileSettings, build_report, count_ops, count_parameters,
                                  evaluate_quality, format_table, measure_peak_memory, measure_runtime, profile_model,
                                  rank_models, read_json, write_json)
from effsr_core.profiling.counting import find_excluded_modules
from effsr_core.profiling.ranking import competition_ranks
from profile_files import write_image_pair, write_rfdn_options

compat.install()


def conv_macs(conv: nn.Conv2d, positions: int) -> int:
    """Multiply-accumulates of a stride-1 'same' conv evaluated at ``positions`` output pixels."""
    return conv.out_channels * conv.in_channels // conv.groups * conv.kernel_size[0] * conv.kernel_size[1] * positions


def test_rfdn_reproduces_ntire_baseline_figures():
    ops = count_ops(RFDN(), torch.rand(1, 3, 256, 256))
    params = count_parameters(RFDN())
    assert params.total == params.counted == 433_448
    assert round(params.counted / 1e6, 3) == 0.433
    assert round(ops.counted.activations / 1e6, 2) == 112.03
    assert ops.counted.num_conv == 64
    assert abs(ops.counted.ntire_flops - 27.10e9) / 27.10e9 < 0.01
    assert ops.counted.ntire_flops == (ops.counted.conv_macs + ops.counted.conv_bias_elements
                                       + ops.counted.activation_op_elements)
    assert ops.counted.macs == ops.counted.conv_macs  # torch's counter only sees the convs in RFDN
    # fvcore (NTIRE 2024-2026): the conv MACs plus 4 per output element of the bilinear upsampling in RFDN's ESA
    assert ops.counted.conv_macs < ops.counted.fvcore_flops < 1.001 * ops.counted.conv_macs
    assert ops.counted_on == 'meta' and ops.frames == 1


def test_basicvsr_counts_per_frame_with_spynet_apart():
    from basicsr.archs.basicvsr_arch import BasicVSR

    model = BasicVSR(num_feat=64, num_block=30, spynet_path=None)
    params = count_parameters(model, exclude=('spynet',))
    assert params.counted == 4_851_011
    assert params.excluded == {'spynet': 1_440_300}

    height, width, frames = 180, 320, 10
    ops = count_ops(model, torch.rand(1, frames, 3, height, width), exclude=('spynet',))
    # Every conv outside SpyNet runs once per frame, at LR size except upconv2 (x2) and conv_hr / conv_last (x4).
    output_scale = {'upconv2': 2, 'conv_hr': 4, 'conv_last': 4}
    expected_macs = sum(conv_macs(conv, height * width * output_scale.get(name, 1) ** 2)
                        for name, conv in model.named_modules()
                        if isinstance(conv, nn.Conv2d) and not name.startswith('spynet.'))
    assert ops.counted_on == 'meta' and ops.frames == frames
    assert ops.counted.macs == expected_macs
    assert abs(ops.counted.macs - 337.8e9) / 337.8e9 < 0.005
    assert ops.counted.num_conv == 2 * (1 + 2 * 30) + 5
    assert set(ops.excluded) == {'spynet'} and ops.excluded['spynet'].macs > 0


def test_shapes_only_counts_equal_real_forward_counts():
    from basicsr.archs.basicvsr_arch import BasicVSR

    model = BasicVSR(num_feat=8, num_block=2)
    inputs = torch.rand(1, 3, 3, 64, 64)
    shapes_only = count_ops(model, inputs, exclude=('spynet',))
    real = count_ops(model, inputs, exclude=('spynet',), use_meta=False)
    assert (shapes_only.counted_on, real.counted_on) == ('meta', 'cpu')
    assert shapes_only.counted == real.counted and shapes_only.excluded == real.excluded


class FunctionalConv(nn.Module):
    """Calls F.conv2d and F.leaky_relu directly: invisible to module-hook counters."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(6, 3, 3, 3))
        self.bias = nn.Parameter(torch.zeros(6))

    def forward(self, x):
        return F.leaky_relu(F.conv2d(x, self.weight, self.bias, padding=1), 0.1)


def test_functional_convs_are_counted():
    ops = count_ops(FunctionalConv(), torch.rand(2, 3, 10, 12)).counted
    positions = 2 * 10 * 12
    assert ops.num_conv == 1
    assert ops.conv_macs == ops.macs == 6 * 3 * 9 * positions
    assert ops.activations == ops.conv_bias_elements == ops.activation_op_elements == 6 * positions
    assert ops.ntire_flops == ops.conv_macs + 2 * 6 * positions


def test_excluded_modules_match_qualified_or_last_name():
    model = nn.Sequential()
    model.add_module('flow', nn.Sequential(nn.Conv2d(3, 3, 1)))
    model.add_module('body', nn.Sequential(nn.Conv2d(3, 4, 1)))
    model.body.add_module('flow', nn.Conv2d(4, 4, 1))
    assert list(find_excluded_modules(model, ('flow',))) == ['flow', 'body.flow']
    assert list(find_excluded_modules(model, ('body',))) == ['body']  # nested matches are not counted twice
    params = count_parameters(model, exclude=('flow',))
    assert params.excluded == {'flow': 12, 'body.flow': 20} and params.counted == 16 and params.total == 48


def test_cpu_peak_memory_of_a_conv_chain():
    channels, size = 8, 16
    model = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1, bias=False),
                          *(nn.Conv2d(channels, channels, 3, padding=1, bias=False) for _ in range(3)))
    inputs = torch.rand(1, 1, size, size)
    result = measure_peak_memory(model, inputs)
    weight_bytes = sum(param.numel() for param in model.parameters()) * 4
    activation_bytes = channels * size * size * 4
    # The input stays alive (held by the caller); each conv runs while its input activation is still alive.
    assert result.peak_bytes == weight_bytes + inputs.numel() * 4 + 2 * activation_bytes
    assert result.device == 'cpu' and 'live tensor storages' in result.method


def test_runtime_fields_exist_and_are_positive():
    result = measure_runtime(nn.Conv2d(3, 3, 3), torch.rand(1, 3, 16, 16), trials=2, repeats=2, warmup=1)
    assert result.best_ms > 0 and result.median_ms > 0
    assert result.trials == 2 and result.repeats == 2 and result.frames == 1
    assert result.threads == torch.get_num_threads() and result.device == 'cpu' and result.device_name


def test_ranking_sums_ranks_and_ties_share_the_best_rank():
    assert competition_ranks({'a': 1.0, 'b': 2.0, 'c': 2.0, 'd': 3.0}) == {'a': 1, 'b': 2, 'c': 2, 'd': 4}

    def result(runtime, params, flops, activations, memory):
        return {'runtime': {'best_ms': runtime}, 'params': {'counted': params},
                'ops': {'counted': {'ntire_flops': flops, 'activations': activations}},
                'memory': {'peak_bytes': memory}}

    ranking = rank_models({'A': result(10, 5, 7, 1, 3), 'B': result(10, 4, 8, 2, 3), 'C': result(20, 6, 6, 3, 1)})
    assert ranking.metrics == ['runtime', 'params', 'flops', 'activations', 'memory']
    assert ranking.ranks['A'] == {'runtime': 1, 'params': 2, 'flops': 2, 'activations': 1, 'memory': 2}
    assert ranking.ranks['B'] == {'runtime': 1, 'params': 1, 'flops': 3, 'activations': 2, 'memory': 2}
    assert ranking.ranks['C'] == {'runtime': 3, 'params': 3, 'flops': 1, 'activations': 3, 'memory': 1}
    assert ranking.scores == {'A': 8, 'B': 9, 'C': 11}
    assert list(ranking.scores) == ['A', 'B', 'C']

    without_runtime = rank_models({'A': {**result(1, 5, 7, 1, 3), 'runtime': None}, 'B': result(2, 4, 8, 2, 3)})
    assert 'runtime' not in without_runtime.metrics


def test_report_json_round_trips(tmp_path):
    settings = ProfileSettings(trials=1, warmup=0)
    results = {'tiny': profile_model(nn.Conv2d(3, 3, 3, padding=1), torch.rand(1, 3, 8, 8), settings)}
    report = build_report(results, rank_models(results), argv=['profile', '-opt', 'x.yml'])
    path = tmp_path / 'report.json'
    write_json(report, path)
    assert read_json(path) == report
    assert report['machine']['torch'] == torch.__version__ and report['command'][1:] == ['-opt', 'x.yml']
    table = format_table(results)
    assert 'tiny' in table and 'NTIRE FLOPs [G]' in table and 'peak memory [MiB]' in table
    assert 'fvcore FLOPs [G]' in table and report['score'] is None


def write_basicvsr_options(path):
    path.write_text('model_type: VideoRecurrentModel\nscale: 4\nnetwork_g:\n  type: BasicVSR\n  num_feat: 8\n'
                    '  num_block: 1\n')
    return path


def test_cli_profiles_and_ranks_models(tmp_path, capsys):
    rfdn = write_rfdn_options(tmp_path / 'rfdn.yml')
    small = write_rfdn_options(tmp_path / 'small.yml', num_feat=16)
    out = tmp_path / 'out' / 'profile.json'
    status = main(['-opt', str(rfdn), '--name', 'RFDN', '--model', f'RFDN-16={small}', '--input-size', '3x32x32',
                   '--device', 'cpu', '--runtime-trials', '1', '--warmup', '0', '--json', str(out)])
    captured = capsys.readouterr()
    printed = captured.out
    assert status == 0
    assert 'RFDN' in printed and 'RFDN-16' in printed and 'NTIRE ranking' in printed
    progress = ['[1/2] RFDN: building', '[2/2] RFDN-16: building', '[1/2] RFDN: ops (1/3)', '[1/2] RFDN: memory (2/3)',
                '[1/2] RFDN: runtime (3/3)', '[2/2] RFDN-16: runtime (3/3)']
    assert all(line in captured.err.splitlines() for line in progress)
    assert '[1/2]' not in printed and 'warning' not in captured.err  # no dataset: no PSNR, no checkpoint warning
    report = json.loads(out.read_text())
    assert report['results']['RFDN']['params']['counted'] == 433_448
    assert report['results']['RFDN']['ops']['counted']['num_conv'] == 64
    assert report['results']['RFDN']['runtime']['best_ms'] > 0
    assert report['ranking']['scores'] == {'RFDN-16': 5, 'RFDN': 10}
    assert report['results']['RFDN']['checkpoint'] is None


def test_cli_predicts_latency_next_to_the_measured_and_the_speedup_next_to_the_macs(tmp_path, capsys):
    rfdn = write_rfdn_options(tmp_path / 'rfdn.yml')
    small = write_rfdn_options(tmp_path / 'small.yml', num_feat=16)
    table, out = tmp_path / 'tables' / 'cpu.json', tmp_path / 'profile.json'
    main(['-opt', str(rfdn), '--name', 'RFDN', '--model', f'RFDN-16={small}', '--input-size', '3x32x32',
          '--device', 'cpu', '--runtime-trials', '1', '--warmup', '0', '--skip', 'memory', '--predict-latency',
          '--cost-table', str(table), '--json', str(out)])
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    for name in ('RFDN', 'RFDN-16'):
        predicted = report['results'][name]['predicted']
        assert predicted['ms'] > 0 and predicted['backend'] == 'eager-nchw' and predicted['table'] == str(table)
    versus = report['versus_first']
    macs = {name: report['results'][name]['ops']['counted']['macs'] for name in versus}
    assert versus['RFDN']['speedup'] == pytest.approx(1.0) and versus['RFDN']['mac_reduction'] == pytest.approx(1.0)
    assert versus['RFDN-16']['mac_reduction'] == pytest.approx(macs['RFDN'] / macs['RFDN-16'])
    assert 'predicted runtime [ms]' in printed and 'Against RFDN: speed-up' in printed
    assert table.is_file() and json.loads(table.read_text())['key']['backend'] == 'eager-nchw'


@pytest.mark.parametrize('extra, message', [
    (['--cost-table', 'x.json'], 'argument --cost-table: needs --predict-latency'),
    (['--predict-latency', '--backend', 'torchscript'], 'argument --predict-latency: the cost model predicts the '
                                                         'eager backend, not torchscript'),
])
def test_cli_refuses_a_prediction_it_cannot_make(tmp_path, capsys, extra, message):
    rfdn = write_rfdn_options(tmp_path / 'rfdn.yml')
    with pytest.raises(SystemExit):
        main(['-opt', str(rfdn), '--input-size', '3x32x32', '--device', 'cpu', *extra])
    assert message in capsys.readouterr().err


def test_cli_records_checkpoints_and_warns_of_psnr_without_one(tmp_path, capsys):
    options = write_rfdn_options(tmp_path / 'rfdn.yml', num_feat=8)
    checkpoint = tmp_path / 'trained.pth'
    torch.save({'params': build_model_from_options(options).state_dict()}, checkpoint)
    gt_dir, lq_dir = write_image_pair(tmp_path)
    out = tmp_path / 'profile.json'
    main(['--model', f'trained={options}:{checkpoint}', '--model', f'random={options}', '--input-size', '3x32x32',
          '--device', 'cpu', '--skip', 'memory', 'runtime', '--dataset-gt', str(gt_dir), '--dataset-lq', str(lq_dir),
          '--json', str(out)])
    errors = capsys.readouterr().err.splitlines()
    results = read_json(out)['results']
    assert results['trained']['checkpoint'] == str(checkpoint) and results['random']['checkpoint'] is None
    assert results['random']['quality']['items'] == 1
    warnings = [line for line in errors if line.startswith('warning')]
    assert warnings == ['warning: random has no checkpoint (--ckpt): its PSNR/SSIM are those of a randomly '
                        'initialised network']
    assert '[2/2] random: PSNR/SSIM (2/2)' in errors


def test_cli_refuses_to_rank_mixed_input_sizes_before_measuring(tmp_path, capsys):
    video, image = write_basicvsr_options(tmp_path / 'vsr.yml'), write_rfdn_options(tmp_path / 'rfdn.yml', 8)
    out = tmp_path / 'profile.json'
    with pytest.raises(SystemExit) as exit_info:
        main(['-opt', str(video), '-opt', str(image), '--lr-size', '64x64', '--frames', '10', '--device', 'cpu',
              '--json', str(out)])
    errors = capsys.readouterr().err
    assert exit_info.value.code == 2 and not out.exists()
    assert 'building' not in errors  # refused from the options alone: nothing built, nothing measured
    assert ('error: argument --input-size/--lr-size/--frames: models given different input sizes cannot be ranked '
            '(vsr: 10 frames of 3x64x64, rfdn: 3x256x256); give them one size or pass --allow-mixed-sizes') in errors


def test_cli_ranks_mixed_input_sizes_when_allowed(tmp_path, capsys):
    video, image = write_basicvsr_options(tmp_path / 'vsr.yml'), write_rfdn_options(tmp_path / 'rfdn.yml', 8)
    out = tmp_path / 'profile.json'
    main(['-opt', str(video), '-opt', str(image), '--lr-size', '64x64', '--frames', '2', '--input-size', '3x32x32',
          '--device', 'cpu', '--skip', 'memory', 'runtime', '--allow-mixed-sizes', '--json', str(out)])
    assert 'input sizes differ' in capsys.readouterr().out
    report = read_json(out)
    assert report['results']['vsr']['input_shape'] == [1, 2, 3, 64, 64]
    assert report['results']['rfdn']['input_shape'] == [1, 3, 32, 32]
    assert set(report['ranking']['scores']) == {'vsr', 'rfdn'}


@pytest.mark.parametrize('arguments, message', [
    (['--input-size', '3x256'], 'argument --input-size: malformed size'),
    (['--input-size', '256x256'], 'argument --input-size: malformed size'),
    (['--lr-size', '180by320'], 'argument --lr-size: malformed size'),
    (['--model', 'no-equals-sign'], 'argument --model: expected NAME=OPTIONS[:CKPT]'),
    (['-opt', 'missing.yml'], 'argument -opt/--options: Options file not found'),
    (['--ckpt', 'a.pth'], 'argument --ckpt: give it once after its -opt/--options'),
    (['--dataset-frames', '0'], 'argument --dataset-frames: expected a positive integer'),
])
def test_cli_rejects_bad_arguments(arguments, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code != 0
    assert message in capsys.readouterr().err


def test_cli_names_an_unknown_arch_and_a_missing_checkpoint(tmp_path, capsys):
    unknown = tmp_path / 'unknown.yml'
    unknown.write_text('network_g:\n  type: NoSuchArch\n')
    with pytest.raises(SystemExit):
        main(['-opt', str(unknown), '--device', 'cpu'])
    assert "argument -opt/--options: Unknown BasicSR arch 'NoSuchArch'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(['-opt', str(write_rfdn_options(tmp_path / 'rfdn.yml')), '--ckpt', str(tmp_path / 'none.pth')])
    assert 'argument --ckpt: Checkpoint not found' in capsys.readouterr().err


def test_model_spec_parsing():
    spec = parse_model_spec('fast=opts/a.yml:ckpt/a.pth')
    assert (spec.name, spec.options, spec.checkpoint) == ('fast', 'opts/a.yml', 'ckpt/a.pth')
    assert parse_model_spec('fast=opts/a.yml').checkpoint is None


def test_video_detection_from_options(tmp_path):
    assert is_video_options(write_basicvsr_options(tmp_path / 'video.yml'))
    assert not is_video_options(write_rfdn_options(tmp_path / 'rfdn.yml'))
    mmagic_video = tmp_path / 'basicvsr.py'
    mmagic_video.write_text("model = dict(type='BasicVSR', generator=dict(type='BasicVSRNet', mid_channels=8, "
                            "num_blocks=1, spynet_pretrained=None))\n")
    assert is_video_options(mmagic_video)


def test_checkpoints_load_basicsr_mmengine_and_bare(tmp_path):
    from mmengine.logging import HistoryBuffer

    source, target = RFDN(num_feat=8, num_blocks=1), RFDN(num_feat=8, num_blocks=1)
    ema = {key: value + 1 for key, value in source.state_dict().items()}
    torch.save({'params': source.state_dict(), 'params_ema': ema}, tmp_path / 'basicsr.pth')
    load_checkpoint(target, tmp_path / 'basicsr.pth')
    assert torch.equal(target.fea_conv.bias, ema['fea_conv.bias'])
    load_checkpoint(target, tmp_path / 'basicsr.pth', param_key='params')
    assert torch.equal(target.fea_conv.bias, source.fea_conv.bias)

    mmengine_state = {f'generator.module.{key}': value for key, value in ema.items()}
    torch.save({'state_dict': {**mmengine_state, 'discriminator.weight': torch.zeros(1)},
                'message_hub': HistoryBuffer()}, tmp_path / 'mmengine.pth')
    load_checkpoint(target, tmp_path / 'mmengine.pth')
    assert torch.equal(target.fea_conv.bias, ema['fea_conv.bias'])

    torch.save(source.state_dict(), tmp_path / 'bare.pth')
    load_checkpoint(target, tmp_path / 'bare.pth')
    assert torch.equal(target.fea_conv.bias, source.fea_conv.bias)


class PlanInStateDict(nn.Module):
    """A 'pruned' network whose channel plan is extra state: loading rebuilds it, so count after loading."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3)

    def get_extra_state(self):
        return {'channels': self.conv.out_channels}

    def set_extra_state(self, state):
        self.conv = nn.Conv2d(3, state['channels'], 3)


def test_parameters_are_counted_after_a_rebuilding_load(tmp_path):
    torch.save({'params': PlanInStateDict(channels=4).state_dict()}, tmp_path / 'pruned.pth')
    model = PlanInStateDict(channels=8)
    load_checkpoint(model, tmp_path / 'pruned.pth')
    assert count_parameters(model).total == 3 * 4 * 9 + 4


def test_build_from_mmagic_config(tmp_path):
    config = tmp_path / 'rfdn_mmagic.py'
    config.write_text("model = dict(type='BaseEditModel', generator=dict(type='RFDN', num_feat=16, num_blocks=2))\n")
    model = build_model_from_options(config)
    assert isinstance(model, RFDN) and not model.training and len(model.block_names) == 2


class Bicubic(nn.Module):
    """x4 bicubic upsampling, a parameter-free 'model'."""

    def forward(self, x):
        return F.interpolate(x, scale_factor=4, mode='bicubic', align_corners=False)


def test_video_clip_folders_take_the_first_frames(tmp_path):
    from effsr_core.profiling import VideoClipFolders

    for kind, size in (('gt', 16), ('lq', 4)):
        for clip in ('000', '011'):
            (tmp_path / kind / clip).mkdir(parents=True)
            for index in range(5):
                cv2.imwrite(str(tmp_path / kind / clip / f'{index:08d}.png'), np.zeros((size, size, 3), np.uint8))
    samples = list(VideoClipFolders(tmp_path / 'gt', tmp_path / 'lq', ['011'], max_frames=3))
    assert [sample.name for sample in samples] == ['011']
    assert samples[0].lq.shape == (3, 3, 4, 4) and len(samples[0].gt) == 3
    assert [len(sample.gt) for sample in VideoClipFolders(tmp_path / 'gt', tmp_path / 'lq')] == [5, 5]


def test_psnr_ssim_match_basicsr_on_bicubic_upsampling(tmp_path):
    from basicsr.metrics import calculate_psnr, calculate_ssim
    from basicsr.utils import img2tensor, tensor2img

    gt_dir, lq_dir = tmp_path / 'hr', tmp_path / 'lr'
    gt_dir.mkdir()
    lq_dir.mkdir()
    rows, cols = np.mgrid[0:32, 0:40]
    gt = np.stack([(rows * 7 + cols * 3) % 256, (rows * cols) % 256, (cols * 5) % 256], axis=-1).astype(np.uint8)
    cv2.imwrite(str(gt_dir / '0001.png'), gt)
    cv2.imwrite(str(lq_dir / '0001x4.png'), cv2.resize(gt, (10, 8), interpolation=cv2.INTER_AREA))

    result = evaluate_quality(Bicubic(), PairedImageFolders(gt_dir, lq_dir, '{}x4'), crop_border=4)

    lq = img2tensor(cv2.imread(str(lq_dir / '0001x4.png')).astype(np.float32) / 255.0, bgr2rgb=True, float32=True)
    output = tensor2img(Bicubic()(lq.unsqueeze(0)))
    assert result.items == 1
    assert result.psnr == pytest.approx(calculate_psnr(output, gt, crop_border=4), abs=1e-9)
    assert result.ssim == pytest.approx(calculate_ssim(output, gt, crop_border=4), abs=1e-9)


def fake_result(ms, params, macs, activations, memory=None, psnr=None, predicted=None):
    """A profile result dict with only the measures the comparison plot reads."""
    return {'input_shape': [1, 3, 32, 32], 'runtime': {'median_ms': ms, 'device_name': 'CPU X', 'threads': 2},
            'params': {'counted': params}, 'ops': {'counted': {'macs': macs, 'activations': activations}},
            'memory': None if memory is None else {'peak_bytes': memory},
            'quality': None if psnr is None else {'psnr': psnr},
            'predicted': None if predicted is None else {'ms': predicted}}


def test_plot_normalises_every_measure_by_the_baseline():
    from effsr_core.profiling.plot import describe_setting, format_ratio, normalised_measures, psnr_differences

    results = {'A': fake_result(8.0, 400, 1000, 64, memory=2048, psnr=30.5),
               'B': fake_result(2.0, 100, 250, 16, psnr=30.0)}
    # no model was predicted: left out; B has no memory: None for B
    assert normalised_measures(results) == {
        'runtime': {'A': 1.0, 'B': 0.25}, 'params': {'A': 1.0, 'B': 0.25}, 'MACs': {'A': 1.0, 'B': 0.25},
        'activations': {'A': 1.0, 'B': 0.25}, 'peak memory': {'A': 1.0, 'B': None}}
    assert normalised_measures(results, 'B') == {
        'runtime': {'A': 4.0, 'B': 1.0}, 'params': {'A': 4.0, 'B': 1.0}, 'MACs': {'A': 4.0, 'B': 1.0},
        'activations': {'A': 4.0, 'B': 1.0}}  # the baseline has no memory: nothing to divide by
    assert psnr_differences(results) == {'A': 0.0, 'B': -0.5}
    assert psnr_differences(results, 'B') == {'A': 0.5, 'B': 0.0}
    assert psnr_differences({'A': fake_result(1.0, 1, 1, 1), 'B': fake_result(1.0, 1, 1, 1, psnr=30.0)}) == {}
    with pytest.raises(ValueError, match="no model is named 'C' \\(models: A, B\\)"):
        normalised_measures(results, 'C')
    assert [format_ratio(value) for value in (0.4213, 1.0, 12.34, 0.0421)] == ['0.42x', '1.00x', '12x', '0.042x']
    assert describe_setting(results) == 'input 3x32x32; CPU X, 2 threads'


def test_cli_plots_the_models_and_redraws_the_json_report(tmp_path, capsys):
    from effsr_core.profiling import plot

    large = write_rfdn_options(tmp_path / 'large.yml', num_feat=16)
    small = write_rfdn_options(tmp_path / 'small.yml', num_feat=8)
    out, png = tmp_path / 'profile.json', tmp_path / 'profile.png'
    main(['--model', f'RFDN-16={large}', '--model', f'RFDN-8={small}', '--input-size', '3x32x32', '--device', 'cpu',
          '--runtime-trials', '1', '--warmup', '0', '--skip', 'memory', '--json', str(out), '--plot', str(png)])
    assert f'Wrote {png}' in capsys.readouterr().out
    assert png.read_bytes()[:4] == b'\x89PNG'

    redrawn = tmp_path / 'redrawn.png'
    assert plot.main([str(out), '--plot', str(redrawn), '--plot-baseline', 'RFDN-8']) == 0
    assert f'Wrote {redrawn}' in capsys.readouterr().out
    assert redrawn.read_bytes()[:4] == b'\x89PNG'
    ratios = plot.normalised_measures(read_json(out)['results'], 'RFDN-8')
    assert set(ratios) == {'runtime', 'params', 'MACs', 'activations'}  # no memory, no prediction
    assert ratios['params']['RFDN-8'] == 1.0 and ratios['params']['RFDN-16'] > 1


@pytest.mark.parametrize('extra, message', [
    (['--plot', '{tmp}/missing/p.png'], "argument --plot: folder not found: {tmp}/missing (create it first)"),
    (['--plot', '{tmp}/p.jpg'], "argument --plot: {tmp}/p.jpg does not end in .png"),
    (['--plot', '{tmp}/p.png', '--plot-baseline', 'C'], "argument --plot-baseline: no model is named 'C' "
                                                        "(models: A, B)"),
    (['--plot-baseline', 'A'], 'argument --plot-baseline: needs --plot'),
])
def test_cli_refuses_a_plot_it_cannot_draw_before_building(tmp_path, capsys, extra, message):
    options = write_rfdn_options(tmp_path / 'rfdn.yml', num_feat=8)
    out = tmp_path / 'profile.json'
    with pytest.raises(SystemExit) as exit_info:
        main(['--model', f'A={options}', '--model', f'B={options}', '--input-size', '3x32x32', '--device', 'cpu',
              '--json', str(out), *(argument.format(tmp=tmp_path) for argument in extra)])
    errors = capsys.readouterr().err
    assert exit_info.value.code == 2 and message.format(tmp=tmp_path) in errors
    assert 'building' not in errors and sorted(path.name for path in tmp_path.iterdir()) == ['rfdn.yml']


def test_plot_cli_refuses_what_is_not_a_profiler_report(tmp_path, capsys):
    from effsr_core.profiling import plot

    report, png = tmp_path / 'report.json', tmp_path / 'p.png'
    report.write_text(json.dumps({'rows': []}))
    two = tmp_path / 'two.json'
    two.write_text(json.dumps({'results': {'A': fake_result(2.0, 4, 4, 4), 'B': fake_result(1.0, 2, 2, 2)}}))
    svg = tmp_path / 'p.svg'
    cases = [([str(report), '--plot', str(png)], f"argument REPORT: '{report}' is not a profiler report"),
             ([str(tmp_path / 'none.json'), '--plot', str(png)], 'argument REPORT: no such file'),
             ([str(two), '--plot', str(svg)], f"argument --plot: {svg} does not end in .png"),
             ([str(two), '--plot', str(png), '--plot-baseline', 'C'], 'argument --plot-baseline: no model is named')]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            plot.main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not png.exists() and not svg.exists()


@pytest.mark.slow
def test_a_profile_without_plot_never_imports_matplotlib():
    import subprocess
    import sys

    code = ("import sys, effsr_core.profile, effsr_core.profiling.plot; "
            "print(sorted(name for name in sys.modules if name.split('.')[0] == 'matplotlib'))")
    finished = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert finished.stdout.strip() == '[]'
