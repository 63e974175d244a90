"""The CUDA paths (run on a machine with a GPU; skipped elsewhere): the profiler's CUDA timing and allocator peak,
TorchScript on the GPU, tiled inference, and the SSL / MemSR networks giving the CPU's results on the GPU.

These import no toolbox, so they also run where only torch is installed:
``python -m pytest --noconftest tests/test_cuda.py``.
"""
from __future__ import annotations

import pytest
import torch

from effsr_core.archs.rfdn_arch import RFDN
from effsr_core.inference import forward_tiled
from effsr_core.profiling.backends import check_against_eager, compile_network, relative_difference
from effsr_core.profiling.memory import CUDA_METHOD
from effsr_core.profiling.profiler import ProfileSettings, profile_model
from memsr_plugin.conversion import convert
from memsr_plugin.archs import EDSRPixelShuffle
from ssl_plugin.archs import SSLBasicVSR
from ssl_plugin.pruning.config import PruningConfig
from ssl_plugin.pruning.pruner import StructuredPruner

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
#: float32 on the GPU (TF32 off) against the CPU: different kernels and summation orders.
GPU_TOLERANCE = 1e-4


@pytest.fixture(autouse=True)
def no_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def pruned_basicvsr() -> SSLBasicVSR:
    torch.manual_seed(0)
    trained = SSLBasicVSR(num_feat=16, num_block=2).eval()
    return trained.pruned(StructuredPruner(PruningConfig(ratio=0.5)).select(trained)).eval()


def test_profile_on_the_gpu_counts_as_on_the_cpu_and_reports_the_allocator_peak():
    torch.manual_seed(0)
    inputs = torch.rand(1, 3, 32, 32)
    cpu = profile_model(RFDN(num_feat=16), inputs, ProfileSettings(measure_runtime=False))
    gpu = profile_model(RFDN(num_feat=16), inputs.cuda(), ProfileSettings(trials=2, warmup=1))
    assert gpu['ops'] == cpu['ops'] and gpu['params'] == cpu['params']
    assert gpu['memory']['method'] == CUDA_METHOD and gpu['memory']['peak_bytes'] > 0
    assert gpu['runtime']['device'].startswith('cuda') and gpu['runtime']['device_name'] == torch.cuda.get_device_name()
    assert gpu['runtime']['best_ms'] > 0


def test_torchscript_backend_on_the_gpu_gives_eager_outputs():
    network = pruned_basicvsr().cuda()
    inputs = torch.rand(1, 3, 3, 24, 24, device='cuda')
    compiled = compile_network(network, inputs, 'torchscript')
    assert check_against_eager(network, compiled, inputs) <= GPU_TOLERANCE
    result = profile_model(network, inputs, ProfileSettings(backend='torchscript', trials=1), compiled=compiled)
    assert result['backend']['name'] == 'torchscript' and result['memory']['method'] == CUDA_METHOD


def test_networks_give_the_cpu_results_on_the_gpu():
    torch.manual_seed(0)
    teacher = EDSRPixelShuffle(upscale=2, num_feat=16, num_block=2).eval()
    cases = [(pruned_basicvsr(), torch.rand(1, 3, 3, 24, 24)), (RFDN(num_feat=16).eval(), torch.rand(1, 3, 20, 28)),
             (teacher, torch.rand(1, 3, 20, 28)), (convert(teacher).eval(), torch.rand(1, 3, 20, 28))]
    for network, inputs in cases:
        with torch.no_grad():
            expected = network(inputs)
            actual = network.cuda()(inputs.cuda()).cpu()
        assert relative_difference(actual, expected) <= GPU_TOLERANCE, type(network).__name__


def test_tiled_inference_on_the_gpu_equals_untiled_and_returns_cpu_tensors():
    torch.manual_seed(0)  # 7 convs of 3x3: a receptive field of 7 LR pixels, within (overlap - blend) / 2
    network = EDSRPixelShuffle(upscale=2, num_feat=16, num_block=2).eval().cuda()
    inputs = torch.rand(1, 3, 40, 56, device='cuda')
    whole = forward_tiled(network, inputs)
    tiled = forward_tiled(network, inputs, tile=24, overlap=16, blend=0)
    assert whole.device.type == 'cpu' and tiled.shape == whole.shape
    assert relative_difference(tiled, whole) <= GPU_TOLERANCE
