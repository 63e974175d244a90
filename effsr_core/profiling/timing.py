"""Inference runtime following the NTIRE efficient-SR protocol: the best of several trials.

Each trial times ``repeats`` forwards and averages them; the result keeps the best trial (NTIRE) and the median of
all timed forwards. CUDA forwards are timed with CUDA events, CPU forwards with ``time.perf_counter``.
"""
from __future__ import annotations

import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch


@dataclass(frozen=True)
class RuntimeResult:
    """Runtime of a forward pass, in milliseconds per output frame (per image for image models).

    Attributes:
        best_ms: Best trial's mean (NTIRE: best of three consecutive trials).
        median_ms: Median over all timed forwards.
        trials: Number of trials.
        repeats: Timed forwards per trial.
        warmup: Untimed forwards before the trials.
        frames: Output frames per forward; the times are divided by it.
        threads: ``torch.get_num_threads()`` during the measurement.
        device: Device the forwards ran on.
        device_name: GPU or CPU model name.
    """
    best_ms: float
    median_ms: float
    trials: int
    repeats: int
    warmup: int
    frames: int
    threads: int
    device: str
    device_name: str


def cpu_model_name() -> str:
    """CPU model from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    cpuinfo = Path('/proc/cpuinfo')
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """Human-readable name of the GPU or CPU behind ``device``."""
    return torch.cuda.get_device_name(device) if device.type == 'cuda' else cpu_model_name()


#: A network's forward: an eval-mode module, or a network compiled for another backend (``profiling.backends``).
Forward = Callable[[torch.Tensor], Any]


def time_forward_ms(model: Forward, inputs: torch.Tensor) -> float:
    """Wall time of one forward in milliseconds (waits for the GPU to finish)."""
    if inputs.device.type == 'cuda':
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        model(inputs)
        end.record()
        torch.cuda.synchronize(inputs.device)
        return start.elapsed_time(end)
    start_time = time.perf_counter()
    model(inputs)
    return (time.perf_counter() - start_time) * 1000.0


def measure_runtime(model: Forward, inputs: torch.Tensor, trials: int = 3, repeats: int = 1, warmup: int = 1,
                    frames: int = 1) -> RuntimeResult:
    """Time inference forwards of ``model`` on ``inputs`` under ``torch.no_grad()``.

    Args:
        model: The network's forward, in eval mode and on the device of ``inputs``.
        inputs: The input batch.
        trials: Number of trials; the best trial is reported (NTIRE uses 3).
        repeats: Timed forwards per trial.
        warmup: Untimed forwards first (allocator, cuDNN autotuning, caches).
        frames: Output frames per forward (video models); times are reported per frame.

    Returns:
        Best-of-trials and median times in ms per frame, with the settings, thread count and device name.
    """
    if trials < 1 or repeats < 1 or warmup < 0:
        raise ValueError(f'Need trials >= 1, repeats >= 1 and warmup >= 0; got {trials}, {repeats}, {warmup}.')
    with torch.no_grad():
        for _ in range(warmup):
            time_forward_ms(model, inputs)
        trial_times = [[time_forward_ms(model, inputs) / frames for _ in range(repeats)] for _ in range(trials)]
    return RuntimeResult(best_ms=min(statistics.fmean(times) for times in trial_times),
                         median_ms=statistics.median(time_ms for times in trial_times for time_ms in times),
                         trials=trials, repeats=repeats, warmup=warmup, frames=frames,
                         threads=torch.get_num_threads(), device=str(inputs.device),
                         device_name=device_name(inputs.device))


def interleaved_runtimes(modules: Mapping[Any, Forward], inputs: torch.Tensor, rounds: int,
                         frames: int = 1) -> dict[Any, dict[str, Any]]:
    """Time several networks on the same input in interleaved rounds (round r runs each once, after one untimed
    warm-up forward each), so that a machine busier at one moment slows every network alike.

    Returns, per key: ``median_ms``, ``best_ms`` and every run (``runs_ms``), in milliseconds per output frame.
    """
    times: dict[Any, list[float]] = {key: [] for key in modules}
    with torch.no_grad():
        for module in modules.values():  # allocator and oneDNN primitive caches
            module(inputs)
        for _ in range(rounds):
            for key, module in modules.items():
                times[key].append(time_forward_ms(module, inputs) / frames)
    return {key: {'median_ms': statistics.median(t), 'best_ms': min(t), 'runs_ms': t} for key, t in times.items()}
