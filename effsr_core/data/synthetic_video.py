"""Synthetic video clips: a smooth, sub-pixel virtual camera moving over one still photo.

Every frame is resampled from the same source photo (never from the previous frame), so the clip stays as sharp as
the photo however long it is, and the motion between frames is known to be small, smooth and mostly translational:
a pan of a few tenths of a pixel to about two pixels per frame, a slow zoom within +-10 % and a rotation of a few
degrees over the clip, all smooth functions of time drawn from a NumPy generator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

#: Source pixels kept between the sampled window and the photo border, so the interpolation kernel stays inside.
KERNEL_MARGIN = 4
#: Range of the steady pan speed (output pixels per frame) and of the smooth speed wobble added on each axis.
BASE_SPEED_RANGE = (0.3, 1.2)
WOBBLE_SPEED_RANGE = (0.1, 0.6)
#: Ranges of the zoom (log of the scale) and rotation (degrees): a sinusoid amplitude plus a linear drift.
ZOOM_WAVE_RANGE = (0.02, 0.05)
ZOOM_DRIFT_LIMIT = 0.05
ROTATION_WAVE_RANGE_DEG = (0.5, 1.5)
ROTATION_DRIFT_LIMIT_DEG = 2.0
#: Frequencies of the sinusoids, in cycles per clip: low, so every quantity varies slowly from frame to frame.
FREQUENCY_RANGE = (0.3, 1.5)


@dataclass(frozen=True)
class CameraPath:
    """Per-frame pose of the virtual camera over the source photo (one row per frame).

    ``centers`` (n, 2) is the window centre as (x, y) in source pixels, ``scales`` (n,) the number of source pixels
    per output pixel (below 1 zooms in) and ``angles`` (n,) the rotation in radians.
    """
    centers: np.ndarray
    scales: np.ndarray
    angles: np.ndarray

    def affine_matrices(self, frame_size: tuple[int, int]) -> np.ndarray:
        """Matrices (n, 2, 3) mapping output pixel (x, y, 1) to source coordinates, for ``WARP_INVERSE_MAP``.

        Args:
            frame_size: Output frame (height, width).
        """
        height, width = frame_size
        output_center = np.array([(width - 1) / 2, (height - 1) / 2])
        cos, sin = np.cos(self.angles), np.sin(self.angles)
        linear = self.scales[:, None, None] * np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], 1)
        translation = self.centers - linear @ output_center
        return np.concatenate([linear, translation[:, :, None]], axis=2)

    def footprint(self, frame_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Smallest and largest source (x, y) touched by any frame, the interpolation margin included."""
        height, width = frame_size
        corners = np.array([[-0.5, -0.5, 1], [width - 0.5, -0.5, 1], [-0.5, height - 0.5, 1],
                            [width - 0.5, height - 0.5, 1]])
        mapped = self.affine_matrices(frame_size) @ corners.T  # (n, 2, 4)
        return mapped.min(axis=(0, 2)) - KERNEL_MARGIN, mapped.max(axis=(0, 2)) + KERNEL_MARGIN

    def shifted(self, offset: np.ndarray) -> CameraPath:
        """The same path translated by ``offset`` (x, y) source pixels."""
        return CameraPath(self.centers + offset, self.scales, self.angles)


def _smooth_wave(rng: np.random.Generator, time: np.ndarray, amplitude_range: tuple[float, float]) -> np.ndarray:
    """A sinusoid of random amplitude, low frequency and phase, sampled at ``time`` (0 to 1 over the clip)."""
    amplitude = rng.uniform(*amplitude_range)
    frequency = rng.uniform(*FREQUENCY_RANGE)
    phase = rng.uniform(0, 2 * math.pi)
    return amplitude * np.sin(2 * math.pi * frequency * time + phase)


def sample_camera_path(rng: np.random.Generator, num_frames: int) -> CameraPath:
    """Draw a smooth camera path starting at the origin: steady pan plus wobble, slow zoom, slow rotation.

    The pan velocity (output pixels per frame) is a random direction times a steady speed plus one sinusoid per
    axis, so its magnitude stays below about 2 px; zoom and rotation are a sinusoid plus a linear drift.
    """
    time = np.linspace(0.0, 1.0, num_frames)
    direction = rng.uniform(0, 2 * math.pi)
    steady_velocity = rng.uniform(*BASE_SPEED_RANGE) * np.array([math.cos(direction), math.sin(direction)])
    wobble = np.stack([_smooth_wave(rng, time, WOBBLE_SPEED_RANGE) for _ in range(2)], axis=1)
    velocity = steady_velocity + wobble
    log_scales = _smooth_wave(rng, time, ZOOM_WAVE_RANGE) + rng.uniform(-ZOOM_DRIFT_LIMIT, ZOOM_DRIFT_LIMIT) * time
    scales = np.exp(log_scales)
    angles_deg = (_smooth_wave(rng, time, ROTATION_WAVE_RANGE_DEG)
                  + rng.uniform(-ROTATION_DRIFT_LIMIT_DEG, ROTATION_DRIFT_LIMIT_DEG) * time)
    # Velocity is in output pixels; the source moves by that times the current scale.
    steps = velocity[:-1] * scales[:-1, None]
    centers = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    return CameraPath(centers, scales, np.deg2rad(angles_deg))


def resize_short_side(photo: np.ndarray, short_side: int) -> np.ndarray:
    """Resize ``photo`` so its shorter side is ``short_side``: area averaging to shrink, Lanczos to enlarge."""
    height, width = photo.shape[:2]
    factor = short_side / min(height, width)
    if factor == 1:
        return photo
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LANCZOS4
    return cv2.resize(photo, (round(width * factor), round(height * factor)), interpolation=interpolation)


def place_path_in_photo(photo: np.ndarray, path: CameraPath, frame_size: tuple[int, int],
                        rng: np.random.Generator) -> tuple[np.ndarray, CameraPath]:
    """Put the path at a random position where every frame stays inside the photo.

    If the path's footprint is larger than the photo, the photo is first enlarged (Lanczos) just enough.

    Returns:
        The (possibly enlarged) photo and the translated path, in that photo's pixel coordinates.
    """
    low, high = path.footprint(frame_size)
    extent = high - low
    height, width = photo.shape[:2]
    factor = max(1.0, extent[0] / (width - 1), extent[1] / (height - 1))
    if factor > 1:
        new_size = (math.ceil(width * factor) + 1, math.ceil(height * factor) + 1)
        photo = cv2.resize(photo, new_size, interpolation=cv2.INTER_LANCZOS4)
        height, width = photo.shape[:2]
    slack = np.array([width - 1, height - 1]) - extent
    offset = -low + rng.uniform(0.0, 1.0, size=2) * slack
    return photo, path.shifted(offset)


def render_clip(photo: np.ndarray, path: CameraPath, frame_size: tuple[int, int]) -> np.ndarray:
    """Render every frame of ``path`` from ``photo`` with Lanczos resampling.

    Returns:
        uint8 frames (n, height, width, channels), same channel order as ``photo``.
    """
    height, width = frame_size
    frames = [
        cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP,
                       borderMode=cv2.BORDER_REFLECT) for matrix in path.affine_matrices(frame_size)
    ]
    return np.stack(frames)
