"""Tests of export (``effsr_core.exporting`` and the ``effsr_core.export`` command): every registered architecture
to ONNX and TorchScript, taken from the registry itself and checked by running the files (ONNX Runtime,
``torch.jit.load``) against PyTorch eager at sizes other than the export's; the pruned SSL network; BasicSR's EDSR
and an MMagic config through the command; the unsupported-op error; verification failures leaving no file; every
refused argument. CPU, seeded, tiny networks. ONNX cases are skipped where onnxruntime is not installed."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from effsr_core import compat, registry
from effsr_core.export import main
from effsr_core.exporting import (DEFAULT_TOLERANCE, FORMATS, ExportError, export_and_verify, random_input,
                                  second_input_shape)
from effsr_core.plugins import import_plugins
from effsr_core.networks import build_model_from_options, deployed_form
from ssl_plugin.archs.ssl_basicvsr_arch import SSLBasicVSR
from ssl_plugin.pruning.plan import PruningPlan

compat.install()
import_plugins()

#: Registered architectures whose example cannot be exported, each with the reason. Empty: every registered
#: architecture exports to both formats (SSLBasicVSR through its scriptable export form).
NOT_EXPORTABLE: dict[str, str] = {}

RFDN_YAML = 'model_type: SRModel\nscale: 4\nnetwork_g:\n  type: RFDN\n  num_feat: 8\n  num_blocks: 2\n'
EDSR_YAML = ('model_type: SRModel\nscale: 2\nnetwork_g:\n  type: EDSR\n  num_in_ch: 3\n  num_out_ch: 3\n'
             '  num_feat: 8\n  num_block: 2\n  upscale: 2\n  res_scale: 1\n  img_range: 255.\n'
             '  rgb_mean: [0.4488, 0.4371, 0.4040]\n')
SSL_DEMO_OPTIONS = 'options/basicsr/ssl/demo_SSL_BasicVSR_tiny_offline.yml'


def _arch_cases():
    cases = []
    for name in sorted(registry.components('arch')):
        marks = [pytest.mark.skip(reason=f'not exportable: {NOT_EXPORTABLE[name]}')] if name in NOT_EXPORTABLE else []
        cases.append(pytest.param(name, marks=marks, id=name))
    return cases


def _needs_runtime(fmt: str) -> None:
    if fmt == 'onnx':
        pytest.importorskip('onnxruntime')


def run_file(path, fmt: str, x: torch.Tensor) -> np.ndarray:
    """Run an exported file on ``x`` independently of ``exporting.verify``."""
    if fmt == 'onnx':
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
        return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        return torch.jit.load(str(path)).eval()(x).numpy()


def relative_error(actual: np.ndarray, expected: torch.Tensor) -> float:
    assert actual.shape == tuple(expected.shape)
    return float(np.abs(actual - expected.numpy()).max() / expected.abs().max())


def assert_file_reproduces(network: nn.Module, path, fmt: str, shape) -> None:
    """The file at a third size (not one verification used) against eager."""
    third = second_input_shape(second_input_shape(shape))
    x = random_input(third, seed=7)
    with torch.no_grad():
        expected = network(x)
    assert relative_error(run_file(path, fmt, x), expected) <= DEFAULT_TOLERANCE


def leftovers(folder) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.mark.parametrize('fmt', FORMATS)
@pytest.mark.parametrize('name', _arch_cases())
def test_every_registered_arch_exports_and_runs_like_eager_at_other_sizes(name, fmt, tmp_path):
    _needs_runtime(fmt)
    example = registry.example('arch', name)
    torch.manual_seed(0)
    network = registry.components('arch')[name](**example['kwargs']).eval()
    network = deployed_form(network) or network
    path = tmp_path / f'{name}.{fmt}'
    report = export_and_verify(network, example['input'], fmt, path)
    first, second = (comparison.input_shape for comparison in report.comparisons)
    assert first == tuple(example['input'])
    assert all(a != b for i, (a, b) in enumerate(zip(first, second)) if i != len(first) - 3)  # not the channels
    assert all(c.relative_error <= DEFAULT_TOLERANCE for c in report.comparisons)
    assert leftovers(tmp_path) == [path.name]
    assert_file_reproduces(network, path, fmt, example['input'])


@pytest.mark.parametrize('bidirectional', [True, False], ids=['bidirectional', 'uni'])
@pytest.mark.parametrize('fmt', FORMATS)
def test_pruned_ssl_basicvsr_exports_with_free_frame_count(fmt, bidirectional, tmp_path):
    """The compact network (RSC gathers and scatters, kept pixel-shuffle groups), factors not all 1."""
    _needs_runtime(fmt)
    torch.manual_seed(0)
    dense = SSLBasicVSR(num_feat=8, num_block=2, upsample_feat=8, bidirectional=bidirectional)
    with torch.no_grad():
        for name, parameter in dense.named_parameters():
            if name.endswith('_scale'):
                parameter.uniform_(0.5, 1.5)
    kept = {'hidden': range(6), 'in': range(0, 8, 2), 'mid': range(1, 8, 2), 'out': range(1, 8, 2),
            'upconv1': [0, 1, 2, 3, 5], 'upconv2': range(0, 8, 2), 'conv_hr': range(1, 8, 2)}
    plan = PruningPlan(arch=dense.config,
                       kept={name: list(kept[name.split('.')[-1]]) for name in dense.prunable_groups()})
    compact = dense.pruned(plan).eval()
    form = compact.export_form()
    assert all(block.gathers and block.scatters for block in form.forward_trunk.blocks)  # RSC reads and writes
    path = tmp_path / f'ssl.{fmt}'
    report = export_and_verify(compact, (1, 2, 3, 12, 20), fmt, path)
    assert report.method == 'scripted'
    assert [c.input_shape[1] for c in report.comparisons] == [2, 3]
    for frames in (1, 5):
        x = random_input((1, frames, 3, 9, 14), seed=frames)
        with torch.no_grad():
            expected = compact(x)
        assert relative_error(run_file(path, fmt, x), expected) <= DEFAULT_TOLERANCE


def test_scriptable_form_matches_the_dense_forward_when_factors_are_folded():
    torch.manual_seed(0)
    network = SSLBasicVSR(num_feat=4, num_block=1, upsample_feat=4).eval()
    with torch.no_grad():
        network.upconv2_scale.uniform_(0.5, 1.5)
        scripted = torch.jit.script(network.export_form())
        x = random_input((1, 3, 3, 10, 13), seed=0)
        assert relative_error(scripted(x).numpy(), network(x)) < 1e-6


def test_second_input_shape_changes_every_dynamic_axis_and_keeps_alignment():
    assert second_input_shape((1, 3, 64, 64)) == (2, 3, 72, 80)
    assert second_input_shape((1, 3, 6, 10)) == (2, 3, 8, 14)
    assert second_input_shape((1, 3, 7, 9)) == (2, 3, 8, 11)
    assert second_input_shape((2, 4, 3, 16, 24)) == (3, 5, 3, 24, 40)


# ----------------------------------------------------------------------------------------------- the command
@pytest.fixture
def rfdn_files(tmp_path):
    torch.manual_seed(0)
    options, checkpoint = tmp_path / 'rfdn.yml', tmp_path / 'rfdn.pth'
    options.write_text(RFDN_YAML)
    network = build_model_from_options(options)
    torch.save({'params': network.state_dict()}, checkpoint)
    out = tmp_path / 'out'
    out.mkdir()
    return options, checkpoint, out


@pytest.mark.parametrize('fmt', FORMATS)
def test_command_exports_basicsr_edsr_and_prints_the_errors(fmt, tmp_path, capsys):
    _needs_runtime(fmt)
    options, checkpoint = tmp_path / 'edsr.yml', tmp_path / 'edsr.pth'
    options.write_text(EDSR_YAML)
    torch.manual_seed(0)
    network = build_model_from_options(options)
    torch.save({'params': network.state_dict()}, checkpoint)
    output = tmp_path / f'edsr.{fmt}'
    assert main(['-opt', str(options), '--checkpoint', str(checkpoint), '--format', fmt, '--output', str(output),
                 '--input-size', '3x12x16']) == 0
    printed = capsys.readouterr().out
    assert f'exported EDSR (traced) to {fmt}' in printed and 'tolerance 0.0001' in printed
    assert '1x3x12x16 -> 1x3x24x32' in printed and '2x3x16x24 -> 2x3x32x48' in printed
    assert_file_reproduces(network, output, fmt, (1, 3, 12, 16))


def test_command_builds_from_an_mmagic_config(tmp_path, capsys):
    pytest.importorskip('onnxruntime')
    config = tmp_path / 'rfdn_mmagic.py'
    config.write_text("model = dict(type='BaseEditModel', generator=dict(type='RFDN', num_feat=8, num_blocks=1))\n")
    network = build_model_from_options(config)
    checkpoint = tmp_path / 'rfdn.pth'
    torch.save({'state_dict': {f'generator.{k}': v for k, v in network.state_dict().items()}}, checkpoint)
    output = tmp_path / 'rfdn.onnx'
    assert main(['-opt', str(config), '--checkpoint', str(checkpoint), '--format', 'onnx', '--output',
                 str(output), '--input-size', '3x16x16', '--opset', '16']) == 0
    assert 'to onnx opset 16' in capsys.readouterr().out
    assert_file_reproduces(network, output, 'onnx', (1, 3, 16, 16))


@pytest.mark.parametrize('fmt', FORMATS)
def test_command_exports_the_ssl_demo_network(fmt, repo_root, tmp_path, capsys):
    _needs_runtime(fmt)
    options = repo_root / SSL_DEMO_OPTIONS
    torch.manual_seed(0)
    network = build_model_from_options(options)
    checkpoint = tmp_path / 'net_g.pth'
    torch.save({'params': network.state_dict()}, checkpoint)
    output = tmp_path / f'ssl.{fmt}'
    assert main(['-opt', str(options), '--checkpoint', str(checkpoint), '--format', fmt, '--output', str(output),
                 '--lr-size', '16x16', '--frames', '2']) == 0
    assert 'exported SSLBasicVSR (scripted)' in capsys.readouterr().out
    assert_file_reproduces(network, output, fmt, (1, 2, 3, 16, 16))


# ----------------------------------------------------------------------------------------------- failures
class FourierUnit(nn.Module):
    """A frequency-domain block: its FFT has no ONNX form in the TorchScript-based exporter."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.fft2(x).abs()


class SpectralSR(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Conv2d(3, 12, 3, padding=1)
        self.spectral = FourierUnit()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.spectral(self.head(x)), 2)


def test_an_op_without_onnx_form_fails_in_one_line_naming_op_and_module(tmp_path):
    pytest.importorskip('onnxruntime')
    output = tmp_path / 'spectral.onnx'
    with pytest.raises(ExportError) as raised:
        export_and_verify(SpectralSR(), (1, 3, 8, 8), 'onnx', output)
    message = str(raised.value)
    assert '\n' not in message and len(message) < 400
    assert 'aten::fft_fft2' in message and 'spectral (FourierUnit)' in message
    assert leftovers(tmp_path) == []


def test_the_command_reports_an_unsupported_op_with_status_1(tmp_path, capfd, monkeypatch):
    pytest.importorskip('onnxruntime')
    import effsr_core.command_line

    checkpoint = tmp_path / 'spectral.pth'
    torch.save(SpectralSR().state_dict(), checkpoint)
    options = tmp_path / 'spectral.yml'
    options.write_text('model_type: SRModel\nscale: 2\nnetwork_g:\n  type: SpectralSR\n')
    monkeypatch.setattr(effsr_core.command_line, 'build_model_from_options', lambda path: SpectralSR())
    monkeypatch.setattr(effsr_core.command_line, 'is_video_options', lambda path: False)
    output = tmp_path / 'spectral.onnx'
    assert main(['-opt', str(options), '--checkpoint', str(checkpoint), '--format', 'onnx', '--output',
                 str(output), '--input-size', '3x8x8']) == 1
    captured = capfd.readouterr()  # file descriptors: the exporter's C++ code writes its graph dump to fd 1
    lines = captured.err.strip().splitlines()
    assert lines[-1].startswith('export failed: SpectralSR cannot be exported to ONNX: operator aten::fft_fft2')
    assert 'graph' not in captured.out and not output.exists()


class FixedSizeUpsampler(nn.Module):
    """Reads its output size as Python ints: a trace keeps the first input's size as constants."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = (int(x.shape[2]) * 2, int(x.shape[3]) * 2)
        return F.interpolate(self.conv(x), size=size, mode='nearest')


@pytest.mark.parametrize('fmt', FORMATS)
def test_a_file_that_fails_the_second_size_is_not_kept_and_an_older_file_stays(fmt, tmp_path):
    _needs_runtime(fmt)
    output = tmp_path / f'fixed.{fmt}'
    output.write_bytes(b'older export')
    with pytest.raises(ExportError, match='output of 2x3x16x32 for an input of 2x3x16x32, eager gives 2x3x32x64'):
        export_and_verify(FixedSizeUpsampler().eval(), (1, 3, 8, 16), fmt, output)
    assert output.read_bytes() == b'older export' and leftovers(tmp_path) == [output.name]


def test_an_error_above_the_tolerance_is_refused(tmp_path):
    pytest.importorskip('onnxruntime')
    torch.manual_seed(0)
    network = registry.components('arch')['RFDN'](num_feat=8, num_blocks=1).eval()
    with pytest.raises(ExportError, match=r'max \|difference\| / max \|output\| = .* > tolerance 1e-15'):
        export_and_verify(network, (1, 3, 16, 16), 'onnx', tmp_path / 'rfdn.onnx', tolerance=1e-15)
    assert leftovers(tmp_path) == []


# ----------------------------------------------------------------------------------------------- refused arguments
@pytest.mark.parametrize('change, option', [
    ({'--format': 'tflite'}, '--format'),
    ({'-opt': 'missing.yml'}, '-opt/--options'),
    ({'--checkpoint': 'missing.pth'}, '--checkpoint'),
    ({'--checkpoint': 'other_width.pth'}, '--checkpoint'),
    ({'--input-size': '3x64'}, '--input-size'),
    ({'--input-size': '3xAx64'}, '--input-size'),
    ({'--output': 'no_such_folder/rfdn.onnx'}, '--output'),
    ({'--output': '.'}, '--output'),
    ({'--output': 'new_dir/'}, '--output'),
    ({'--frames': '3'}, '--frames'),
    ({'--lr-size': '32x32'}, '--lr-size'),
    ({'--opset': '15', '--format': 'onnx'}, '--opset'),
    ({'--opset': '17'}, '--opset'),
    ({'--tolerance': '0'}, '--tolerance'),
    ({'--tolerance': 'small'}, '--tolerance'),
], ids=['unknown-format', 'missing-options', 'missing-checkpoint', 'checkpoint-not-fitting', 'size-two-dims',
        'size-not-a-number', 'output-folder-missing', 'output-is-a-folder', 'output-missing-folder-with-slash',
        'frames-for-image-model',
        'lr-size-for-image-model', 'opset-too-old', 'opset-for-torchscript', 'tolerance-zero',
        'tolerance-not-a-number'])
def test_bad_arguments_are_refused_naming_the_option(change, option, rfdn_files, tmp_path, capsys, monkeypatch):
    options, checkpoint, out = rfdn_files
    monkeypatch.chdir(out)
    wider = registry.components('arch')['RFDN'](num_feat=16, num_blocks=2)
    torch.save({'params': wider.state_dict()}, out / 'other_width.pth')
    arguments = {'-opt': str(options), '--checkpoint': str(checkpoint), '--format': 'torchscript',
                 '--output': str(out / 'rfdn.pt'), **change}
    before = leftovers(out)
    with pytest.raises(SystemExit) as raised:
        main([item for pair in arguments.items() for item in pair])
    assert raised.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith('python -m effsr_core.export: error: argument ') and option in error
    assert leftovers(out) == before


def test_video_size_options_are_refused_for_image_size_of_a_video_model(repo_root, tmp_path, capsys):
    checkpoint = tmp_path / 'net_g.pth'
    torch.save({'params': build_model_from_options(repo_root / SSL_DEMO_OPTIONS).state_dict()}, checkpoint)
    with pytest.raises(SystemExit):
        main(['-opt', str(repo_root / SSL_DEMO_OPTIONS), '--checkpoint', str(checkpoint), '--format',
              'torchscript', '--output', str(tmp_path / 'x.pt'), '--input-size', '3x16x16'])
    assert 'argument --input-size: ' in capsys.readouterr().err


def test_onnx_without_onnxruntime_is_refused_naming_the_format(rfdn_files, capsys, monkeypatch):
    import importlib.util

    options, checkpoint, out = rfdn_files
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *args: None if name == 'onnxruntime'
                        else find_spec(name, *args))
    with pytest.raises(SystemExit):
        main(['-opt', str(options), '--checkpoint', str(checkpoint), '--format', 'onnx', '--output',
              str(out / 'rfdn.onnx')])
    assert 'argument --format: onnx is verified with ONNX Runtime, which is not installed' in capsys.readouterr().err
    assert leftovers(out) == []
