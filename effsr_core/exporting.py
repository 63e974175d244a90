"""Export a network to ONNX or TorchScript and verify the file before keeping it, framework-free (the command line
is ``effsr_core.export``).

What is exported: the network as given (the caller passes the deployed form, e.g. ``to_plain()`` of a
re-parameterisable network). A network whose forward cannot be traced with free sizes (a Python loop over frames)
provides ``export_form()``, an equivalent module that ``torch.jit.script`` compiles (``SSLBasicVSR`` does); it is
scripted, and every other network is traced. Height, width, batch and, for video networks ((b, t, c, h, w)
input), the frame count are dynamic axes of the file.

Verification, before the file is moved into place: the file is loaded back (ONNX Runtime on the CPU, or
``torch.jit.load``) and run on two seeded random inputs, the requested size and a second one that differs in every
dynamic axis (batch 2, one more frame, larger height and width keeping their alignment to 8); its outputs are
compared with the PyTorch eager forward of the network. The error is ``max |file - eager| / max |eager|`` and must
not exceed the tolerance. The file is written beside the target under a temporary name and renamed onto it only
once verified; on any failure the temporary file is removed and ``ExportError`` says why in one line.

ONNX exporter: torch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``), on purpose. The
default exporter of this torch (torch.export-based) needs onnxscript, a package we do not pin, and specialises a
Python loop over frames to the example's frame count; the TorchScript-based one takes a scripted module, keeps its
loops as ONNX ``Loop`` and reads every size at run time, and it traces plain CNNs with symbolic sizes. It is
deprecated upstream (it warns so); if it is removed, this module is the one place to change.
"""
from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from effsr_core.checkpoints import staged_path

FORMATS = ('onnx', 'torchscript')
DEFAULT_OPSET = 17
#: ONNX GridSample, which flow warping (BasicVSR) becomes, exists from opset 16.
MIN_OPSET = 16
#: The newest opset torch's TorchScript-based exporter writes.
MAX_OPSET = int(getattr(getattr(torch.onnx, '_constants', None), 'ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET', 20))
DEFAULT_TOLERANCE = 1e-4
INPUT_NAME, OUTPUT_NAME = 'lq', 'sr'
#: Dynamic axes, by input rank; the output's spatial axes get names of their own (they are the input's x scale).
DYNAMIC_AXES = {4: ({0: 'batch', 2: 'height', 3: 'width'}, {0: 'batch', 2: 'out_height', 3: 'out_width'}),
                5: ({0: 'batch', 1: 'frames', 3: 'height', 4: 'width'},
                    {0: 'batch', 1: 'frames', 3: 'out_height', 4: 'out_width'})}
#: The second verification size keeps the first one's alignment to this many pixels (windowed networks).
ALIGNMENT = 8


class ExportError(RuntimeError):
    """An export that failed or did not verify; the message is one line."""


@dataclass(frozen=True)
class Comparison:
    """The exported file against PyTorch eager on one input.

    Attributes:
        input_shape: Shape of the (random, seeded) input.
        output_shape: Shape of the eager output.
        max_abs_error: Largest absolute difference between the file's output and eager's.
        max_abs_output: Largest absolute eager output (the scale the error is measured against).
    """
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    max_abs_error: float
    max_abs_output: float

    @property
    def relative_error(self) -> float:
        """``max_abs_error / max_abs_output`` (the absolute error when the output is all zeros); inf if not finite."""
        if not math.isfinite(self.max_abs_error):
            return math.inf
        return self.max_abs_error / self.max_abs_output if self.max_abs_output > 0 else self.max_abs_error


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote and how it verified.

    Attributes:
        path: The verified file.
        format: 'onnx' or 'torchscript'.
        method: 'traced' or 'scripted' (through the network's ``export_form()``).
        opset: ONNX opset (None for TorchScript).
        runtime: What ran the file, with its version.
        tolerance: Largest relative error accepted.
        comparisons: One per verification input.
        export_seconds: Wall-clock time of the export.
        verify_seconds: Wall-clock time of the verification (file and eager forwards).
        size_bytes: Size of the file.
    """
    path: str
    format: str
    method: str
    opset: int | None
    runtime: str
    tolerance: float
    comparisons: tuple[Comparison, ...]
    export_seconds: float
    verify_seconds: float
    size_bytes: int


def second_input_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """A second verification shape that differs from ``shape`` in every dynamic axis: batch 2, one more frame
    (video), and height and width grown by their common alignment (up to ``ALIGNMENT``), width twice as much."""
    *lead, h, w = shape
    step = math.gcd(math.gcd(h, w), ALIGNMENT)
    lead[0] = 2 if lead[0] == 1 else lead[0] + 1
    if len(shape) == 5:
        lead[1] += 1
    return (*lead, h + step, w + 2 * step)


def random_input(shape: Sequence[int], seed: int) -> torch.Tensor:
    """Uniform [0, 1) values of ``shape`` from ``seed`` (the range of the toolboxes' normalised frames)."""
    return torch.rand(tuple(shape), generator=torch.Generator().manual_seed(seed))


def export_program(network: nn.Module) -> tuple[nn.Module, str]:
    """What is written to the file, and how it was obtained: the scripted ``export_form()`` of a network that has
    one ('scripted'), else the network itself, traced by the exporter ('traced')."""
    export_form = getattr(network, 'export_form', None)
    if not callable(export_form):
        return network, 'traced'
    form = export_form().eval()
    try:
        return torch.jit.script(form), 'scripted'
    except Exception as error:  # TorchScript's frontend raises several types, all with the source location
        raise ExportError(f'torch.jit.script cannot compile {type(form).__name__}, the export form of '
                          f'{type(network).__name__}: {_first_line(error)}') from None


def _first_line(error: BaseException, limit: int = 300) -> str:
    """The line of an error message that says what went wrong, shortened: the first line, or the last one of a
    TorchScript interpreter error (which starts with a traceback of the scripted code)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    if text.startswith('The following operation failed in the TorchScript interpreter'):
        text = lines[-1]
    return text if len(text) <= limit else text[:limit - 3] + '...'


@contextlib.contextmanager
def _stdout_of_native_code_discarded() -> Iterator[None]:
    """Discard what native code writes to file descriptor 1 while the block runs.

    torch's TorchScript-based ONNX exporter switches its log on whatever ``verbose`` says (``setup_onnx_logging``
    tests the function ``_jit_is_onnx_log_enabled`` instead of calling it) and, when an export fails, writes the
    whole TorchScript graph to the process's stdout from C++. The failure is reported as ``ExportError`` instead.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, 'wb') as sink:
            os.dup2(sink.fileno(), 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _graph_nodes(graph) -> Iterator:
    for node in graph.nodes():
        yield node
        for block in node.blocks():
            yield from _graph_nodes(block)


def locate_op(network: nn.Module, program: nn.Module, example: torch.Tensor, op: str) -> str:
    """Where ``op`` (e.g. 'aten::fft_fft2') is called: ' in module NAME (Class)' from the trace's scope, and/or
    ' at FILE:LINE' from the TorchScript source range; '' when torch does not say."""
    try:
        if isinstance(program, torch.jit.ScriptModule):
            graph = program.inlined_graph
        else:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                graph = torch.jit.trace(program, (example,), check_trace=False).inlined_graph
    except Exception:  # locating is a courtesy: the op name alone still explains the failure
        return ''
    bare = op.split('::')[-1]
    nodes = [node for node in _graph_nodes(graph) if node.kind() == op]
    nodes = nodes or [node for node in _graph_nodes(graph) if node.kind().split('::')[-1].endswith(f'_{bare}')]
    if not nodes:
        return ''
    node = nodes[0]
    where = ''
    scope = node.scopeName().split('/')[-1].replace('__module.', '').removeprefix('__module')
    if scope:
        try:
            where = f' in module {scope} ({type(network.get_submodule(scope)).__name__})'
        except AttributeError:
            where = f' in module {scope}'
    source = node.sourceRange().splitlines()
    if source and source[0].strip():
        where += f' at {source[0].strip()}'
    return where


def _unsupported_op_message(error: BaseException, opset: int, network: nn.Module, program: nn.Module,
                            example: torch.Tensor) -> str | None:
    """The one-line error for an op without an ONNX form, or None for other failures."""
    match = re.search(r"operator '([\w:.]+)' to ONNX opset version (\d+) is not supported", str(error))
    if match is None:
        return None
    op = match.group(1)
    later = re.search(r'added in version (\d+)', str(error))
    hint = f' (it has one from opset {later.group(1)}: --opset {later.group(1)})' if later else ''
    return (f'{type(network).__name__} cannot be exported to ONNX: operator {op} has no ONNX form at opset {opset}'
            f'{hint}{locate_op(network, program, example, op)}')


def export_onnx(network: nn.Module, program: nn.Module, example: torch.Tensor, path: str, opset: int) -> None:
    """Write ``program`` (see ``export_program``) to ``path`` as ONNX with dynamic axes; ``network`` names the
    failures. Raises ``ExportError`` with one line."""
    inputs_axes, output_axes = DYNAMIC_AXES[example.dim()]
    try:
        with torch.no_grad(), warnings.catch_warnings(), _stdout_of_native_code_discarded():
            warnings.simplefilter('ignore')  # the exporter's deprecation notice; verification judges the file
            torch.onnx.export(program, (example,), path, dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: inputs_axes, OUTPUT_NAME: output_axes})
    except Exception as error:  # the exporter raises OnnxExporterError subclasses and plain RuntimeErrors
        message = _unsupported_op_message(error, opset, network, program, example)
        raise ExportError(message or f'torch.onnx.export failed on {type(network).__name__}: '
                                     f'{_first_line(error)}') from None


def export_torchscript(network: nn.Module, program: nn.Module, example: torch.Tensor, path: str) -> None:
    """Write ``program`` to ``path`` as TorchScript (traced on ``example`` unless already scripted)."""
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter('ignore')  # tracer warnings about Python values; verification judges the file
            if not isinstance(program, torch.jit.ScriptModule):
                program = torch.jit.trace(program, (example,), check_trace=False)
            torch.jit.save(program, path)
    except Exception as error:
        raise ExportError(f'TorchScript export of {type(network).__name__} failed: {_first_line(error)}') from None


def onnxruntime_session(path: str, threads: int):
    """An ONNX Runtime CPU session of the file at ``path`` with every graph optimisation and ``threads`` intra-op
    threads; its log is silenced (a failure is reported once, as ``ExportError``)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4
    options.intra_op_num_threads = threads
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return onnxruntime.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    except Exception as error:
        raise ExportError(f'ONNX Runtime cannot load the exported file: {_first_line(error)}') from None


def _onnx_runner(path: str) -> tuple[Callable[[torch.Tensor], np.ndarray], str]:
    import onnxruntime

    session = onnxruntime_session(path, torch.get_num_threads())

    def run(x: torch.Tensor) -> np.ndarray:
        return session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]

    return run, f'ONNX Runtime {onnxruntime.__version__} (CPU)'


def _torchscript_runner(path: str) -> tuple[Callable[[torch.Tensor], np.ndarray], str]:
    try:
        loaded = torch.jit.load(path, map_location='cpu').eval()
    except Exception as error:
        raise ExportError(f'torch.jit.load cannot load the exported file: {_first_line(error)}') from None

    def run(x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return loaded(x).numpy()

    return run, f'torch.jit.load (torch {torch.__version__})'


def check_onnx_file(path: str) -> None:
    """The ONNX checker's verdict on the file (structure, types, opset), when the onnx package is installed."""
    try:
        import onnx
    except ImportError:
        return
    try:
        onnx.checker.check_model(path)
    except Exception as error:
        raise ExportError(f'the exported ONNX file fails the ONNX checker: {_first_line(error)}') from None


def verify(network: nn.Module, path: str, fmt: str, inputs: Sequence[torch.Tensor],
           tolerance: float) -> tuple[tuple[Comparison, ...], str]:
    """Run the file at ``path`` on each input and compare with ``network``'s eager forward.

    Returns:
        The comparisons and the runtime used.

    Raises:
        ExportError: The file does not load, fails on an input, gives another shape, or exceeds the tolerance.
    """
    if fmt == 'onnx':
        check_onnx_file(path)
    run, runtime = (_onnx_runner if fmt == 'onnx' else _torchscript_runner)(path)
    comparisons = []
    for x in inputs:
        shape = 'x'.join(map(str, x.shape))
        with torch.no_grad():
            expected = network(x).numpy()
        try:
            actual = run(x)
        except Exception as error:
            raise ExportError(f'the exported file fails on an input of {shape} ({runtime}): '
                              f'{_first_line(error)}') from None
        if actual.shape != expected.shape:
            frames = (x.dim() == 5 and actual.shape[1] != expected.shape[1]
                      and actual.shape[2:] == expected.shape[2:])
            hint = ('; tracing unrolled the loop over frames: a recurrent network needs an export_form() that '
                    'torch.jit.script compiles (SSLBasicVSR has one)') if frames else ''
            raise ExportError(f'the exported file gives an output of {"x".join(map(str, actual.shape))} for an '
                              f'input of {shape}, eager gives {"x".join(map(str, expected.shape))}{hint}')
        difference = np.abs(actual.astype(np.float64) - expected)
        comparison = Comparison(tuple(x.shape), tuple(expected.shape),
                                float(difference.max()) if np.isfinite(difference).all() else math.inf,
                                float(np.abs(expected).max()))
        comparisons.append(comparison)
        if not comparison.relative_error <= tolerance:
            raise ExportError(f'the exported file differs from eager on an input of {shape}: max |difference| / '
                              f'max |output| = {comparison.relative_error:.3g} > tolerance {tolerance:g} '
                              f'({runtime})')
    return tuple(comparisons), runtime


def export_and_verify(network: nn.Module, input_shape: Sequence[int], fmt: str, output: str | Path,
                      opset: int = DEFAULT_OPSET, tolerance: float = DEFAULT_TOLERANCE,
                      seed: int = 0) -> ExportReport:
    """Export ``network`` (in eval mode) to ``output`` and verify it at ``input_shape`` and at
    ``second_input_shape(input_shape)``; ``output`` is written only if both verify.

    Args:
        network: The network in the form it deploys as, on the CPU.
        input_shape: (b, c, h, w) for image networks, (b, t, c, h, w) for video networks.
        fmt: 'onnx' or 'torchscript'.
        output: File to write; its folder must exist.
        opset: ONNX opset (``MIN_OPSET`` to ``MAX_OPSET``).
        tolerance: Largest ``max |file - eager| / max |eager|`` accepted.
        seed: Seed of the random inputs (the second input uses ``seed + 1``).

    Raises:
        ExportError: The export or its verification failed; nothing is left at ``output`` by this call.
    """
    if fmt not in FORMATS:
        raise ValueError(f'format must be one of {", ".join(FORMATS)}, got {fmt!r}')
    if len(input_shape) not in DYNAMIC_AXES:
        raise ValueError(f'input shape must be (b, c, h, w) or (b, t, c, h, w), got {tuple(input_shape)}')
    network = network.eval()
    inputs = [random_input(input_shape, seed), random_input(second_input_shape(input_shape), seed + 1)]
    start = time.perf_counter()
    program, method = export_program(network)
    with staged_path(output) as staged:
        if fmt == 'onnx':
            export_onnx(network, program, inputs[0], staged, opset)
        else:
            export_torchscript(network, program, inputs[0], staged)
        exported = time.perf_counter()
        comparisons, runtime = verify(network, staged, fmt, inputs, tolerance)
        verified = time.perf_counter()
        size = os.path.getsize(staged)
    return ExportReport(path=str(output), format=fmt, method=method, opset=opset if fmt == 'onnx' else None,
                        runtime=runtime, tolerance=tolerance, comparisons=comparisons,
                        export_seconds=exported - start, verify_seconds=verified - exported, size_bytes=size)
