"""Files the profiler tests share: small RFDN options and a GT / LQ image pair."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

RFDN_YAML = 'model_type: SRModel\nscale: 4\nnetwork_g:\n  type: RFDN\n  num_feat: {num_feat}\n'


def write_rfdn_options(path: Path, num_feat: int = 50) -> Path:
    """BasicSR options of an RFDN x4 with ``num_feat`` features at ``path``."""
    path.write_text(RFDN_YAML.format(num_feat=num_feat))
    return path


def write_image_pair(root: Path, size: int = 96, scale: int = 4) -> tuple[Path, Path]:
    """One random GT image and its x4 LQ (DIV2K names) under root/gt and root/lq; returns the two folders."""
    gt_dir, lq_dir = root / 'gt', root / 'lq'
    gt_dir.mkdir()
    lq_dir.mkdir()
    gt = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    cv2.imwrite(str(gt_dir / '0001.png'), gt)
    cv2.imwrite(str(lq_dir / '0001x4.png'), cv2.resize(gt, (size // scale, size // scale),
                                                       interpolation=cv2.INTER_AREA))
    return gt_dir, lq_dir
