"""The run: clip windows over a sequence (``plan_clips``), then read, forward and write one item at a time
(``run_inference``), each PNG through ``atomic_write``."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from effsr_core.images import bgr_to_tensor, read_bgr, tensor_to_bgr, write_png
from effsr_core.inference.planning import InferenceItem
from effsr_core.inference.settings import DEFAULT_CLIP_OVERLAP, InferenceError, InferenceSettings
from effsr_core.inference.tiling import forward_tiled
from effsr_core.video_files import VideoDecodeError, read_frames


@dataclass(frozen=True)
class InferenceSummary:
    """What a run did: items (images or sequences), output frames, network forwards and wall-clock seconds."""
    items: int
    frames: int
    forwards: int
    seconds: float


@dataclass(frozen=True)
class ClipWindow:
    """Frames ``[start, stop)`` go through the network together; outputs ``[keep_start, keep_stop)`` are kept."""
    start: int
    stop: int
    keep_start: int
    keep_stop: int


def plan_clips(frames: int, clip_length: int | None = None, clip_overlap: int = DEFAULT_CLIP_OVERLAP
               ) -> list[ClipWindow]:
    """Windows of ``clip_length`` frames over a sequence of ``frames``; their kept ranges cover every frame once.

    Each kept frame has ``clip_overlap`` frames of context on each side inside its window, fewer only where the
    sequence ends; the windows are ``clip_length - 2 * clip_overlap`` frames apart, except the last, which ends
    with the sequence.

    Args:
        frames: Length of the sequence.
        clip_length: Frames per window (None, or at least ``frames``: one window).
        clip_overlap: Frames of context on each side; ``clip_length`` must exceed twice this.
    """
    if clip_length is None or clip_length >= frames:
        return [ClipWindow(0, frames, 0, frames)]
    if clip_length <= 2 * clip_overlap:
        raise InferenceError(f'a clip of {clip_length} frames needs more than twice the clip overlap '
                             f'({clip_overlap})', 'clip_length')
    windows, keep_start = [], 0
    while keep_start < frames:
        start = max(0, min(keep_start - clip_overlap, frames - clip_length))
        stop = start + clip_length
        keep_stop = frames if stop >= frames else stop - clip_overlap
        windows.append(ClipWindow(start, stop, keep_start, keep_stop))
        keep_start = keep_stop
    return windows


def _read_item(item: InferenceItem) -> list[np.ndarray]:
    """The item's images or frames, uint8 HWC BGR: read from its files, or decoded from its video file."""
    if item.video_file is None:
        return [read_bgr(path) for path in item.inputs]
    try:
        frames = read_frames(item.video_file)
    except VideoDecodeError as error:  # planning decoded it; the file may have changed since
        raise InferenceError(str(error), 'input') from None
    if len(frames) != len(item.outputs):
        raise InferenceError(f'{item.video_file} gave {len(frames)} frames, {len(item.outputs)} when planned',
                             'input')
    return frames


#: Told after each clip window of a sequence: (item, windows done, windows in the item).
WindowProgress = Callable[[InferenceItem, int, int], None]


def _super_resolve(model: nn.Module, item: InferenceItem, video: bool, settings: InferenceSettings,
                   window_progress: WindowProgress | None = None) -> int:
    """Read one item, forward it (in clips for a video model) and write its outputs; returns the forwards."""
    frames = _read_item(item)
    if len({frame.shape for frame in frames}) > 1:  # planning checked the sizes; the files may have changed since
        raise InferenceError(f'the frames of {item.name} differ in size', 'input')
    sequence = torch.stack([bgr_to_tensor(frame) for frame in frames])  # (t, c, h, w)
    windows = (plan_clips(len(frames), settings.clip_length, settings.clip_overlap) if video
               else [ClipWindow(0, 1, 0, 1)])
    for done, window in enumerate(windows, 1):
        inputs = sequence[window.start:window.stop] if video else sequence[0]
        with torch.no_grad():
            output = forward_tiled(model, inputs.unsqueeze(0).to(settings.device), settings.tile,
                                   settings.tile_overlap, settings.blend)[0]
        for index in range(window.keep_start, window.keep_stop):
            item.outputs[index].parent.mkdir(parents=True, exist_ok=True)
            write_png(tensor_to_bgr(output[index - window.start] if video else output), item.outputs[index])
        if window_progress is not None and len(windows) > 1:
            window_progress(item, done, len(windows))
    return len(windows)


def run_inference(model: nn.Module, items: Sequence[InferenceItem], video: bool,
                  settings: InferenceSettings = InferenceSettings(),
                  progress: Callable[[int, int, InferenceItem, int, float], None] | None = None,
                  window_progress: WindowProgress | None = None) -> InferenceSummary:
    """Super-resolve every item and write its PNGs (each atomically).

    Args:
        model: The network (moved to ``settings.device`` and switched to eval mode here).
        items: From ``plan_images`` (image model) or ``plan_video`` (video model).
        video: Whether the network takes (b, t, c, h, w) sequences.
        settings: Tiling, clips and device.
        progress: Called after each item with (position from 1, number of items, item, forwards, seconds).
        window_progress: Called after each clip window of a sequence forwarded in several.

    Returns:
        The counts and the wall-clock time.
    """
    settings.check()
    model = model.to(settings.device).eval()
    started = time.perf_counter()
    forwards = 0
    for position, item in enumerate(items, 1):
        item_started = time.perf_counter()
        item_forwards = _super_resolve(model, item, video, settings, window_progress)
        forwards += item_forwards
        if progress is not None:
            progress(position, len(items), item, item_forwards, time.perf_counter() - item_started)
    return InferenceSummary(items=len(items), frames=sum(len(item.outputs) for item in items), forwards=forwards,
                            seconds=time.perf_counter() - started)
