"""PSNR / SSIM of a model over a dataset of (LQ, GT) pairs, with BasicSR's metric functions.

Images follow BasicSR's conventions: the model gets RGB float input in [0, 1]; its output is clamped, rounded to
uint8 and turned into an HWC BGR image (as ``basicsr.utils.tensor2img``) before ``calculate_psnr`` /
``calculate_ssim`` compare it with the ground truth read by OpenCV. A video clip is one sample: the model sees the
whole clip as one (1, t, c, h, w) sequence and the clip's score is the mean over its frames; the dataset score is
the mean over samples.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from effsr_core.images import bgr_to_tensor, image_files, read_bgr, tensor_to_bgr


@dataclass(frozen=True)
class Sample:
    """One evaluation item.

    Attributes:
        name: Image stem or clip name.
        lq: RGB float input in [0, 1], (c, h, w) for an image or (t, c, h, w) for a clip.
        gt: Ground-truth frames as uint8 HWC BGR images (one for an image).
    """
    name: str
    lq: torch.Tensor
    gt: list[np.ndarray]


@dataclass(frozen=True)
class QualityResult:
    """Mean PSNR / SSIM over a dataset.

    Attributes:
        psnr: Mean PSNR in dB.
        ssim: Mean SSIM.
        items: Number of samples (images or clips).
        crop_border: Pixels removed at each border before measuring.
        test_y_channel: Whether the Y channel of YCbCr was measured instead of RGB.
        per_item: PSNR and SSIM of each sample, by name.
    """
    psnr: float
    ssim: float
    items: int
    crop_border: int
    test_y_channel: bool
    per_item: dict[str, dict[str, float]] = field(default_factory=dict)


class PairedImageFolders:
    """Paired image folders: GT ``name.ext`` matches LQ ``template.format(name) + .ext`` (DIV2K: ``'{}x4'``).

    Args:
        gt_dir: Folder of ground-truth (HR) images.
        lq_dir: Folder of low-quality (LR) images.
        template: LQ file stem built from the GT stem.
    """

    def __init__(self, gt_dir: str | Path, lq_dir: str | Path, template: str = '{}x4'):
        lq_dir = Path(lq_dir)
        self.pairs = [(gt, lq_dir / f'{template.format(gt.stem)}{gt.suffix}') for gt in image_files(Path(gt_dir))]
        if not self.pairs:
            raise FileNotFoundError(f'No images in {gt_dir}')
        missing = [str(lq) for _, lq in self.pairs if not lq.is_file()]
        if missing:
            raise FileNotFoundError(f'{len(missing)} LQ images are missing, e.g. {missing[0]}')

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[Sample]:
        for gt, lq in self.pairs:
            yield Sample(gt.stem, bgr_to_tensor(read_bgr(lq)), [read_bgr(gt)])


class VideoClipFolders:
    """REDS-style clips: ``gt_root/<clip>/<frame>.png`` and ``lq_root/<clip>/<frame>.png``; one clip, one sample.

    Args:
        gt_root: Folder of ground-truth clip folders.
        lq_root: Folder of low-quality clip folders with the same frame names.
        clips: Clip folder names (default: every folder in ``gt_root``).
        max_frames: Only the first ``max_frames`` frames of each clip (default: all).
    """

    def __init__(self, gt_root: str | Path, lq_root: str | Path, clips: Sequence[str] | None = None,
                 max_frames: int | None = None):
        gt_root, lq_root = Path(gt_root), Path(lq_root)
        if not gt_root.is_dir():
            raise FileNotFoundError(f'GT clip root not found: {gt_root}')
        names = list(clips) if clips else sorted(path.name for path in gt_root.iterdir() if path.is_dir())
        if not names:
            raise FileNotFoundError(f'No clip folders in {gt_root}')
        self.clips = []
        for name in names:
            gt_frames = image_files(gt_root / name)[:max_frames]
            lq_frames = [lq_root / name / frame.name for frame in gt_frames]
            missing = [str(frame) for frame in lq_frames if not frame.is_file()]
            if not gt_frames or missing:
                raise FileNotFoundError(f'Clip {name}: no GT frames or missing LQ frames (e.g. {missing[:1]})')
            self.clips.append((name, gt_frames, lq_frames))

    def __len__(self) -> int:
        return len(self.clips)

    def __iter__(self) -> Iterator[Sample]:
        for name, gt_frames, lq_frames in self.clips:
            lq = torch.stack([bgr_to_tensor(read_bgr(frame)) for frame in lq_frames])
            yield Sample(name, lq, [read_bgr(frame) for frame in gt_frames])


def evaluate_quality(model: nn.Module, dataset: Iterable[Sample], crop_border: int = 4, test_y_channel: bool = False,
                     device: torch.device | str = 'cpu') -> QualityResult:
    """Mean PSNR / SSIM of ``model`` over ``dataset`` (``basicsr.metrics.calculate_psnr`` / ``calculate_ssim``).

    Args:
        model: The network, already on ``device``; switched to eval mode here.
        dataset: Samples, e.g. ``PairedImageFolders`` or ``VideoClipFolders``.
        crop_border: Pixels removed at each border (NTIRE: 4 for x4).
        test_y_channel: Measure the Y channel of YCbCr instead of RGB.
        device: Device the forwards run on.

    Returns:
        The means over samples, with each sample's scores.
    """
    from basicsr.metrics import calculate_psnr, calculate_ssim

    model.eval()
    per_item = {}
    for sample in dataset:
        with torch.no_grad():
            output = model(sample.lq.unsqueeze(0).to(device))[0]
        frames = list(output) if output.dim() == 4 else [output]
        if len(frames) != len(sample.gt) or frames[0].shape[-2:] != sample.gt[0].shape[:2]:
            raise ValueError(f'{sample.name}: output {tuple(output.shape)} does not match {len(sample.gt)} GT '
                             f'frame(s) of {sample.gt[0].shape[:2]}')
        psnrs, ssims = [], []
        for frame, gt in zip(frames, sample.gt):
            image = tensor_to_bgr(frame)
            psnrs.append(calculate_psnr(image, gt, crop_border, test_y_channel=test_y_channel))
            ssims.append(calculate_ssim(image, gt, crop_border, test_y_channel=test_y_channel))
        per_item[sample.name] = {'psnr': statistics.fmean(psnrs), 'ssim': statistics.fmean(ssims)}
    if not per_item:
        raise ValueError('The dataset is empty.')
    return QualityResult(psnr=statistics.fmean(item['psnr'] for item in per_item.values()),
                         ssim=statistics.fmean(item['ssim'] for item in per_item.values()),
                         items=len(per_item), crop_border=crop_border, test_y_channel=test_y_channel,
                         per_item=per_item)
