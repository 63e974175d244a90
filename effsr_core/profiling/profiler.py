"""Profile one network: parameters, operations, peak memory, runtime and (optionally) PSNR / SSIM.

The result is a plain JSON-ready dict with one section per measure (``params``, ``ops``, ``memory``, ``runtime``,
``quality``; None when not measured), the layout that ``ranking`` and ``report`` read.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable

import torch
from torch import nn

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


#: Called before each measurement with its name, its index (from 1) and the number of measurements.
Progress = Callable[[str, int, int], None]


def profile_model(model: nn.Module, inputs: torch.Tensor, settings: ProfileSettings = ProfileSettings(),
                  dataset: Iterable[Sample] | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Measure ``model`` on ``inputs`` (and on ``dataset`` for quality).

    Args:
        model: The network with its weights loaded; moved to the device of ``inputs`` and switched to eval mode.
        inputs: A (b, c, h, w) image or (b, t, c, h, w) video batch; counts and times are per output frame.
        settings: What to measure and how.
        dataset: Optional (LQ, GT) samples for PSNR / SSIM.
        progress: Optional callback told which measurement starts (``ops``, ``memory``, ``runtime``, ``PSNR/SSIM``).

    Returns:
        Sections ``params``, ``ops``, ``memory``, ``runtime``, ``quality`` (None when not measured), with
        ``input_shape`` and ``device``.
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
    start('ops')
    ops = count_ops(model, inputs, settings.exclude, use_meta=settings.use_meta)
    memory = measure_peak_memory(model, inputs) if start('memory') else None
    runtime = (measure_runtime(model, inputs, settings.trials, settings.repeats, settings.warmup, ops.frames)
               if start('runtime') else None)
    quality = (evaluate_quality(model, dataset, settings.crop_border, settings.test_y_channel, inputs.device)
               if start('PSNR/SSIM') else None)
    return {
        'input_shape': list(inputs.shape),
        'device': str(inputs.device),
        'params': asdict(count_parameters(model, settings.exclude)),
        'ops': asdict(ops),
        'memory': asdict(memory) if memory else None,
        'runtime': asdict(runtime) if runtime else None,
        'quality': asdict(quality) if quality else None,
    }
