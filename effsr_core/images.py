"""Image files <-> tensors, framework-free, with the conventions BasicSR uses for evaluation and saving.

Files are read by OpenCV as uint8 HWC BGR; networks see RGB float (c, h, w) in [0, 1]; outputs are clamped,
rounded and turned back into uint8 BGR like ``basicsr.utils.tensor2img``. PNGs are written through
``atomic_write``, so an interrupted run never leaves a half-written image.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from effsr_core.checkpoints.writing import atomic_write

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')


def image_files(folder: str | Path) -> list[Path]:
    """The image files directly inside ``folder`` (by suffix, case-insensitive), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'Image folder not found: {folder}')
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())


def read_bgr(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 HWC BGR (3 channels)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f'Cannot read image {path}')
    return image


def bgr_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HWC BGR image -> RGB float (c, h, w) tensor in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1].transpose(2, 0, 1))).float() / 255.0


def tensor_to_bgr(image: torch.Tensor) -> np.ndarray:
    """RGB (c, h, w) tensor in [0, 1] -> uint8 HWC BGR image, rounded like ``basicsr.utils.tensor2img``."""
    array = image.detach().float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)[:, :, ::-1]
    return (array * 255.0).round().astype(np.uint8)


def write_png(image: np.ndarray, path: str | Path) -> None:
    """Encode a uint8 HWC BGR image as PNG and write it atomically (the file appears whole or not at all)."""
    encoded, buffer = cv2.imencode('.png', image)
    if not encoded:
        raise OSError(f'Cannot encode {path} as PNG')
    with atomic_write(path) as stream:
        stream.write(buffer.tobytes())
