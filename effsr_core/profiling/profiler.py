"""Profile one network: parameters, operations, peak memory, runtime and (optionally) PSNR / SSIM.

The result is a plain JSON-ready dict with one section per measure (``params``, ``ops``, ``memory``, ``runtime``,
``quality``; None when not measured), the layout that ``ranking`` and ``report`` read. Parameters and operations
are counted on the PyTorch network; runtime and memory are measured under the chosen backend (``backends``), whose
name, version and difference from eager are in ``backend``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable

import torch
from torch import nn

from effsr_core.profiling.backends import CompiledNetwork, check_against_eager, compile_network
from effsr_core.profiling.counting import count_ops, count_parameters
from effsr_core.profiling.memory import measure_peak_memory
from effsr_core.profiling.quality import Sample, evaluate_quality
from effsr_core.profiling.timing import measure_runtime


@dataclass(frozen=True)
class ProfileSettings:
    """What to measure and how.

    Attributes:
        exclude: Sub-module names counted apart (e.g. ``('spynet',)`` for a pretrained flow network).
        measure_memory: Measure the peak memory of one forward.
        measure_runtime: Time the forward.
        trials: Runtime trials (best one reported).
        repeats: Timed forwards per trial.
        warmup: Untimed forwards before timing.
        use_meta: Count operations on the meta device when the model allows it.
        crop_border: Border removed before PSNR / SSIM.
        test_y_channel: PSNR / SSIM on the Y channel instead of RGB.
        backend: What runs the timed and memory forwards (``backends.BACKENDS``); PSNR / SSIM use eager.
    """
    exclude: tuple[str, ...] = ()
    measure_memory: bool = True
    measure_runtime: bool = True
    trials: int = 3
    repeats: int = 1
    warmup: int = 1
    use_meta: bool = True
    crop_border: int = 4
    test_y_channel: bool = False
    backend: str = 'eager'


#: Called before each measurement with its name, its index (from 1) and the number of measurements.
Progress = Callable[[str, int, int], None]


def profile_model(model: nn.Module, inputs: torch.Tensor, settings: ProfileSettings = ProfileSettings(),
                  dataset: Iterable[Sample] | None = None, progress: Progress | None = None,
                  compiled: CompiledNetwork | None = None) -> dict[str, Any]:
    """Measure ``model`` on ``inputs`` (and on ``dataset`` for quality).

    Args:
        model: The network with its weights loaded; moved to the device of ``inputs`` and switched to eval mode.
        inputs: A (b, c, h, w) image or (b, t, c, h, w) video batch; counts and times are per output frame.
        settings: What to measure and how.
        dataset: Optional (LQ, GT) samples for PSNR / SSIM.
        progress: Optional callback told which measurement starts (``ops``, ``memory``, ``runtime``, ``PSNR/SSIM``).
        compiled: ``model`` already compiled for ``settings.backend`` on ``inputs`` (else compiled here).

    Returns:
        Sections ``params``, ``ops``, ``memory``, ``runtime``, ``quality`` (None when not measured), with
        ``input_shape``, ``device`` and ``backend`` (name, description, ``max_relative_difference`` from eager on
        ``inputs``).

    Raises:
        BackendError: The network cannot run under the backend, or gives other results there.
    """
    steps = [step for step, wanted in (('ops', True), ('memory', settings.measure_memory),
                                       ('runtime', settings.measure_runtime), ('PSNR/SSIM', dataset is not None))
             if wanted]

    def start(step: str) -> bool:
        """Announce ``step`` if it is measured; returns whether it is."""
        if step in steps and progress is not None:
            progress(step, steps.index(step) + 1, len(steps))
        return step in steps

    model = model.to(inputs.device).eval()
    if compiled is None:
        compiled = compile_network(model, inputs, settings.backend)
    elif compiled.backend != settings.backend:
        raise ValueError(f'compiled for {compiled.backend}, but the settings ask for {settings.backend}')
    start('ops')
    ops = count_ops(model, inputs, settings.exclude, use_meta=settings.use_meta)
    # first forward of the compiled network: the resident-memory measure of other backends needs it cold
    memory = (measure_peak_memory(model, inputs, None if compiled.backend == 'eager' else compiled)
              if start('memory') else None)
    difference = check_against_eager(model, compiled, inputs) if compiled.backend != 'eager' else 0.0
    runtime = (measure_runtime(compiled, inputs, settings.trials, settings.repeats, settings.warmup, ops.frames)
               if start('runtime') else None)
    quality = (evaluate_quality(model, dataset, settings.crop_border, settings.test_y_channel, inputs.device)
               if start('PSNR/SSIM') else None)
    return {
        'input_shape': list(inputs.shape),
        'device': str(inputs.device),
        'backend': {'name': compiled.backend, 'description': compiled.description,
                    'max_relative_difference': difference},
        'params': asdict(count_parameters(model, settings.exclude)),
        'ops': asdict(ops),
        'memory': asdict(memory) if memory else None,
        'runtime': asdict(runtime) if runtime else None,
        'quality': asdict(quality) if quality else None,
    }
