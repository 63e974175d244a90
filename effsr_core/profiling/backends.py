"""Runtime backends the profiler can time a network under: PyTorch eager, TorchScript, ONNX Runtime and OpenVINO.

Each backend turns a network (in eval mode, in the form it deploys as) into a ``CompiledNetwork``: a callable
taking and returning torch tensors, named with the backend and its version and settings.

* ``eager``: the module itself.
* ``torchscript``: the network traced (or its ``export_form()`` scripted, as the export does) and frozen with
  ``torch.jit.freeze`` (weights folded in as constants), on the input's device; where freezing itself fails (a torch
  bug seen on CUDA) the unfrozen module runs and the description says so.
* ``onnxruntime``: the ONNX file the export writes (``effsr_core.exporting``), in an ONNX Runtime session with every
  graph optimisation on and as many intra-op threads as torch uses; CPU only here.
* ``openvino``: the same ONNX file compiled by OpenVINO for its CPU plugin, float32 inference precision (OpenVINO
  would otherwise choose bf16 on CPUs that have it) and torch's thread count; CPU only.

Every compiled network is checked against the eager forward on the profiled input before it is timed:
``max |backend - eager| / max |eager|`` is reported, and above ``TOLERANCE`` the profile stops with one line.
The ONNX file is written to a temporary folder that is removed once the session holds the model.

Seen here: once OpenVINO 2026.4.1 has run in a process, a later MMagic training run (mmengine ``Runner``) in the same
process crashed with a segmentation fault; the profiler is a process of its own, and the tests run OpenVINO in child
processes. Not seen with the other backends.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from importlib import util as import_util
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from effsr_core.exporting import DEFAULT_OPSET, ExportError, export_onnx, export_program, onnxruntime_session

BACKENDS = ('eager', 'torchscript', 'onnxruntime', 'openvino')
#: The Python package each backend needs (None: torch only).
PACKAGES = {'eager': None, 'torchscript': None, 'onnxruntime': 'onnxruntime', 'openvino': 'openvino'}
#: Backends that run on the CPU only here.
CPU_ONLY = ('onnxruntime', 'openvino')
#: Largest relative difference from eager accepted before timing (the export's verification tolerance).
TOLERANCE = 1e-4


class BackendError(RuntimeError):
    """A network that cannot run under the chosen backend, or runs there with other results; one line."""


@dataclass(frozen=True)
class CompiledNetwork:
    """A network prepared for one backend.

    Attributes:
        forward: Takes the input tensor, returns the output tensor (on the input's device).
        backend: One of ``BACKENDS``.
        description: The backend with its version and settings, e.g. 'ONNX Runtime 1.32.0 (CPU, 2 threads)'.
    """
    forward: Callable[[torch.Tensor], torch.Tensor]
    backend: str
    description: str

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.forward(inputs)


def check_backend(backend: str, device: str) -> str | None:
    """Why ``backend`` cannot run on ``device`` here (unknown, package missing, CPU-only), or None if it can."""
    if backend not in BACKENDS:
        return f'unknown backend {backend!r}; choose from {", ".join(BACKENDS)}'
    package = PACKAGES[backend]
    if package is not None and import_util.find_spec(package) is None:
        return f'{backend} needs the Python package {package}, which is not installed (bash scripts/setup_env.sh)'
    if backend in CPU_ONLY and device != 'cpu':
        return f'{backend} runs on the CPU only here; use --device cpu'
    return None


def _torchscript(network: nn.Module, example: torch.Tensor) -> CompiledNetwork:
    program, method = export_program(network)
    with torch.no_grad():
        if not isinstance(program, torch.jit.ScriptModule):
            program = torch.jit.trace(program, (example,), check_trace=False)
        try:
            program, frozen = torch.jit.freeze(program.eval()), 'frozen'
        except RuntimeError as error:  # e.g. torch 2.11's CUDA conv folding asserts on EDSR-style graphs
            frozen = f'not frozen: torch.jit.freeze failed with {str(error).splitlines()[0][:120]}'
    return CompiledNetwork(program, 'torchscript', f'TorchScript (torch {torch.__version__}, {method}, {frozen})')


def onnx_file(network: nn.Module, example: torch.Tensor, folder: str | Path) -> str:
    """Export ``network`` as the export command does (``export_program``, ``DEFAULT_OPSET``, dynamic axes) to
    ``folder/network.onnx``; returns the path."""
    program, _ = export_program(network)
    path = str(Path(folder) / 'network.onnx')
    export_onnx(network, program, example, path, DEFAULT_OPSET)
    return path


def _numpy_forward(run: Callable[[np.ndarray], np.ndarray]) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda inputs: torch.from_numpy(run(inputs.detach().numpy()))


def _onnxruntime(network: nn.Module, example: torch.Tensor) -> CompiledNetwork:
    import onnxruntime

    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix='effsr_backend_') as folder:
        session = onnxruntime_session(onnx_file(network, example, folder), threads)
    output = session.get_outputs()[0].name
    input_name = session.get_inputs()[0].name
    forward = _numpy_forward(lambda array: session.run([output], {input_name: array})[0])
    return CompiledNetwork(forward, 'onnxruntime', f'ONNX Runtime {onnxruntime.__version__} (CPU, {threads} threads, '
                                                   f'all graph optimisations)')


def _openvino(network: nn.Module, example: torch.Tensor) -> CompiledNetwork:
    import openvino

    threads = torch.get_num_threads()
    core = openvino.Core()
    with tempfile.TemporaryDirectory(prefix='effsr_backend_') as folder:
        model = core.read_model(onnx_file(network, example, folder))
        compiled = core.compile_model(model, 'CPU', {'INFERENCE_PRECISION_HINT': 'f32',
                                                     'INFERENCE_NUM_THREADS': threads})
    request = compiled.create_infer_request()
    forward = _numpy_forward(lambda array: request.infer([array])[compiled.output(0)].copy())
    version = openvino.get_version().split('-')[0]
    return CompiledNetwork(forward, 'openvino', f'OpenVINO {version} (CPU, {threads} threads, f32)')


def relative_difference(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """``max |actual - expected| / max |expected|`` (inf for another shape or a non-finite difference)."""
    if actual.shape != expected.shape:
        return float('inf')
    difference = (actual.double() - expected.double()).abs().max().item()
    scale = expected.abs().max().item()
    return difference / scale if scale > 0 else difference


def compile_network(network: nn.Module, example: torch.Tensor, backend: str = 'eager') -> CompiledNetwork:
    """Prepare ``network`` (eval mode, on the device of ``example``) to run under ``backend``.

    Raises:
        BackendError: The backend cannot run here, or the network cannot be converted for it (one line).
    """
    problem = check_backend(backend, example.device.type)
    if problem:
        raise BackendError(problem)
    network = network.eval()
    if backend == 'eager':
        return CompiledNetwork(network, 'eager', f'PyTorch eager (torch {torch.__version__})')
    try:
        return {'torchscript': _torchscript, 'onnxruntime': _onnxruntime, 'openvino': _openvino}[backend](
            network, example)
    except ExportError as error:
        raise BackendError(f'{type(network).__name__} cannot run under {backend}: {error}') from None
    except Exception as error:  # converters and runtimes raise their own types; the first line says what failed
        line = next((part.strip() for part in str(error).splitlines() if part.strip()), type(error).__name__)
        raise BackendError(f'{type(network).__name__} cannot run under {backend}: {line[:300]}') from None


def check_against_eager(network: nn.Module, compiled: CompiledNetwork, inputs: torch.Tensor) -> float:
    """The relative difference of ``compiled`` from eager on ``inputs``; raises ``BackendError`` above
    ``TOLERANCE``."""
    with torch.no_grad():
        error = relative_difference(compiled(inputs), network(inputs))
    if not error <= TOLERANCE:
        raise BackendError(f'{type(network).__name__} under {compiled.backend} differs from eager: max |difference| '
                           f'/ max |output| = {error:.3g} > {TOLERANCE:g}')
    return error
