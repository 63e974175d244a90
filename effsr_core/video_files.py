"""Video files as frame sequences, framework-free: which files count as videos, and their frames decoded by
OpenCV (``cv2.VideoCapture``, FFmpeg where OpenCV has it) as uint8 HWC BGR, like ``images.read_bgr``.

Decoding streams one frame at a time; only ``read_frames`` keeps them all. FFmpeg may log its own complaint about a
file it cannot decode to stderr before ``VideoDecodeError`` is raised.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

VIDEO_SUFFIXES = ('.mp4', '.avi', '.mkv', '.mov', '.webm')


class VideoDecodeError(OSError):
    """A video file that cannot be opened, or of which no frame can be decoded."""


def has_video_suffix(path: str | Path) -> bool:
    """Whether ``path`` ends with one of ``VIDEO_SUFFIXES`` (case-insensitive); the file is not opened."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def decoded_frames(path: str | Path) -> Iterator[np.ndarray]:
    """The frames of a video file in order, uint8 HWC BGR, decoded one at a time.

    Raises:
        VideoDecodeError: The file cannot be opened as a video, or its first frame cannot be decoded.
    """
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VideoDecodeError(f'cannot decode video file {path}: OpenCV cannot open it (not a video, or a '
                                   f'container it has no backend for)')
        decoded, frame = capture.read()
        if not decoded:
            raise VideoDecodeError(f'cannot decode video file {path}: no frame could be decoded (corrupt or empty)')
        while decoded:
            yield frame
            decoded, frame = capture.read()
    finally:
        capture.release()


def frame_sizes(path: str | Path) -> list[tuple[int, int]]:
    """(h, w) of every frame of a video file (each is decoded, none kept): its length and its sizes."""
    return [frame.shape[:2] for frame in decoded_frames(path)]


def read_frames(path: str | Path) -> list[np.ndarray]:
    """Every frame of a video file, uint8 HWC BGR, all in memory."""
    return list(decoded_frames(path))
