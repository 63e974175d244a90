"""Runtime backends of the profiler: each gives eager's outputs, refusals name the backend, the CLI reports which
backend ran, and the resident-memory peak of compiled networks sees a known allocation."""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from effsr_core.archs.rfdn_arch import RFDN
from effsr_core.profile import main
from effsr_core.profiling.counting import count_parameters
from effsr_core.profiling.backends import (BACKENDS, BackendError, CompiledNetwork, check_against_eager, check_backend,
                                           compile_network, relative_difference)
from effsr_core.profiling.memory import RESIDENT_METHOD, measure_resident_growth, resident_peak_supported
from effsr_core.profiling.profiler import ProfileSettings, profile_model
from effsr_core.profiling.report import format_table
from ssl_plugin.archs import SSLBasicVSR
from ssl_plugin.pruning.config import PruningConfig
from ssl_plugin.pruning.pruner import StructuredPruner
from profile_files import write_rfdn_options
from test_export import SpectralSR

TESTS = Path(__file__).resolve().parent
AVAILABLE = [backend for backend in BACKENDS if check_backend(backend, 'cpu') is None]


class TinySR(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv2d(8, 12, 3, padding=1))

    def forward(self, x):
        return F.pixel_shuffle(self.body(x), 2)


def pruned_video_network() -> SSLBasicVSR:
    torch.manual_seed(0)
    trained = SSLBasicVSR(num_feat=8, num_block=2).eval()
    return trained.pruned(StructuredPruner(PruningConfig(ratio=0.5)).select(trained)).eval()


def check_outputs_match_eager(backend: str) -> None:
    """Every compiled form equals eager on an image and a pruned video network, at two sizes (dynamic axes)."""
    torch.manual_seed(0)
    for network, shape in ((TinySR().eval(), (1, 3, 12, 16)), (pruned_video_network(), (1, 3, 3, 16, 16))):
        example = torch.rand(shape)
        compiled = compile_network(network, example, backend)
        assert compiled.backend == backend and compiled.description
        assert check_against_eager(network, compiled, example) <= 1e-5
        other = torch.rand(2, *shape[1:-2], shape[-2] + 8, shape[-1] + 4)  # other batch and size: dynamic axes
        with torch.no_grad():
            assert relative_difference(compiled(other), network(other)) <= 1e-5


def in_own_process(backend: str) -> bool:
    """OpenVINO runs in a child process here: with its libraries loaded, a later MMagic training run in the same
    pytest process crashed (segmentation fault; seen with OpenVINO 2026.4.1, not with the other backends)."""
    return backend == 'openvino'


def run_child(code: str) -> None:
    """Run ``code`` in a fresh Python with this folder importable; its failure fails the test, with its stderr."""
    done = subprocess.run([sys.executable, '-c', code], cwd=TESTS, capture_output=True, text=True, check=False,
                          env={**os.environ, 'PYTHONPATH': os.pathsep.join([str(TESTS), str(TESTS.parent)])})
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize('backend', AVAILABLE)
def test_every_backend_gives_eager_outputs_on_an_image_and_a_pruned_video_network(backend):
    if in_own_process(backend):
        run_child(f'import test_backends; test_backends.check_outputs_match_eager({backend!r})')
    else:
        check_outputs_match_eager(backend)


def test_openvino_and_onnxruntime_are_installed_by_the_setup():
    assert 'onnxruntime' in AVAILABLE and 'openvino' in AVAILABLE


def test_refusals_name_what_is_wrong():
    assert 'choose from eager, torchscript, onnxruntime, openvino' in check_backend('tensorrt', 'cpu')
    assert check_backend('onnxruntime', 'cuda') == 'onnxruntime runs on the CPU only here; use --device cpu'
    assert check_backend('torchscript', 'cuda') is None
    with pytest.raises(BackendError, match='SpectralSR cannot run under onnxruntime: .*aten::fft_fft2'):
        compile_network(SpectralSR().eval(), torch.rand(1, 3, 8, 8), 'onnxruntime')


def test_a_backend_that_differs_from_eager_is_refused():
    network = TinySR().eval()
    shifted = CompiledNetwork(lambda x: network(x) + 1, 'onnxruntime', 'shifted')
    with pytest.raises(BackendError, match='under onnxruntime differs from eager'):
        check_against_eager(network, shifted, torch.rand(1, 3, 8, 8))
    with pytest.raises(BackendError, match='differs from eager'):
        profile_model(network, torch.rand(1, 3, 8, 8), ProfileSettings(backend='onnxruntime', measure_runtime=False),
                      compiled=shifted)


@pytest.mark.skipif(not resident_peak_supported(), reason='the peak resident memory cannot be reset here')
def test_resident_memory_growth_sees_what_the_forward_touches():
    size = 64 * 2 ** 20

    def forward(x):
        buffer = torch.empty(size, dtype=torch.uint8)
        buffer.fill_(1)  # touched pages become resident
        return buffer

    result = measure_resident_growth(forward, torch.zeros(1))
    assert result.method == RESIDENT_METHOD
    assert 0.9 * size <= result.peak_bytes < 2 * size  # pages freed earlier in the process may be reused


def check_profile_command(backend: str, folder: Path) -> None:
    """The profile command under ``backend``: the JSON names it, counts stay PyTorch's, memory is the resident one."""
    options = write_rfdn_options(folder / 'rfdn.yml', num_feat=16)
    out = folder / 'profile.json'
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(['-opt', str(options), '--input-size', '3x16x16', '--runtime-trials', '1', '--warmup', '0',
                       '--backend', backend, '--json', str(out)])
    assert status == 0
    result = json.loads(out.read_text())['results']['rfdn']
    assert result['backend']['name'] == backend and result['backend']['max_relative_difference'] <= 1e-4
    assert result['runtime']['best_ms'] > 0
    assert result['params']['counted'] == count_parameters(RFDN(num_feat=16)).counted  # counted in PyTorch
    if resident_peak_supported():
        assert result['memory']['method'] == RESIDENT_METHOD
    assert f'Backend: {result["backend"]["description"]}' in printed.getvalue()
    assert format_table({'rfdn': result}).count(backend) >= 1


@pytest.mark.slow
@pytest.mark.parametrize('backend', [backend for backend in AVAILABLE if backend != 'eager'])
def test_the_profile_command_reports_the_backend(tmp_path, backend):
    if in_own_process(backend):
        run_child(f'import pathlib, test_backends; test_backends.check_profile_command({backend!r}, '
                  f'pathlib.Path({str(tmp_path)!r}))')
    else:
        check_profile_command(backend, tmp_path)


def test_the_profile_command_refuses_a_network_the_backend_cannot_run(tmp_path, capsys, monkeypatch):
    options = write_rfdn_options(tmp_path / 'rfdn.yml', num_feat=16)
    monkeypatch.setattr('effsr_core.profile.build_network', lambda *args, **kwargs: (SpectralSR().eval(), False))
    with pytest.raises(SystemExit) as exited:
        main(['-opt', str(options), '--input-size', '3x16x16', '--backend', 'onnxruntime'])
    assert exited.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith('python -m effsr_core.profile: error: argument --backend: rfdn: SpectralSR cannot run '
                            'under onnxruntime') and 'aten::fft_fft2' in error
