"""Pieces shared by the quality benchmarks: train through ``python -m effsr_core.train`` in a work folder (finished
runs with unchanged options are reused), and score a checkpoint on the bundled validation clips or photos."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
import yaml

REPO = Path(__file__).resolve().parent.parent
VAL_CLIPS = ('000', '011', '015', '020')


def prepare_workdir(workdir: str | Path) -> Path:
    """The work folder, with the offline data made and linked in (runs read ``data/offline/...``)."""
    from effsr_core.data.make_offline_data import ensure_offline_data

    ensure_offline_data(REPO / 'data/offline', seed=0)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / 'data').exists():
        (workdir / 'data').symlink_to(REPO / 'data')
    return workdir


def _checkpoint(workdir: Path, opt: dict) -> Path:
    return workdir / 'experiments' / opt['name'] / 'models' / 'net_g_latest.pth'


def launch(workdir: Path, opt: dict, core: int | None = None) -> subprocess.Popen | None:
    """Start training ``opt`` through our BasicSR entry point (stdout and stderr to ``workdir/<name>.log``), or
    return None when a run with unchanged options already finished in ``workdir``. With ``core``, the run and its
    data-loader workers are pinned to that CPU core with one torch thread, so that two runs started side by side
    share the machine evenly."""
    path = workdir / f'{opt["name"]}.yml'
    if _checkpoint(workdir, opt).exists() and path.exists() and yaml.safe_load(path.read_text()) == opt:
        return None
    for stale in (f'{opt["name"]}.result.json', f'{opt["name"]}.train.json'):
        (workdir / stale).unlink(missing_ok=True)
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    command, env = [sys.executable, '-m', 'effsr_core.train', '-opt', str(path)], dict(os.environ)
    if core is not None:
        command = ['taskset', '-c', str(core), *command]
        env.update(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    with open(workdir / f'{opt["name"]}.log', 'w') as log:
        process = subprocess.Popen(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=env)
    process.started = time.time()
    return process


def wait(workdir: Path, opt: dict, process: subprocess.Popen | None) -> Path:
    """The finished run's latest checkpoint; the training's wall-clock seconds are kept beside its options
    (``train_seconds``). A failed run raises ``CalledProcessError`` (its log is ``workdir/<name>.log``)."""
    if process is not None:
        if process.wait() != 0:
            raise subprocess.CalledProcessError(process.returncode, process.args)
        seconds = time.time() - process.started
        (workdir / f'{opt["name"]}.train.json').write_text(json.dumps({'seconds': seconds}))
    return _checkpoint(workdir, opt)


def run(workdir: Path, opt: dict) -> Path:
    """Train ``opt`` (``launch`` then ``wait``); a run that already finished in ``workdir`` is reused."""
    return wait(workdir, opt, launch(workdir, opt))


def train_seconds(workdir: Path, name: str) -> float | None:
    """Wall-clock seconds the run ``name`` trained for, when ``run`` trained it."""
    path = workdir / f'{name}.train.json'
    return json.loads(path.read_text())['seconds'] if path.exists() else None


def evaluated(workdir: Path, name: str, checkpoint: Path, evaluate: Callable[[Path, Path], dict]) -> dict:
    """``evaluate(checkpoint, options)`` of a finished run, kept next to its options so that a re-run reuses it,
    with the run's ``train_seconds``."""
    cached = workdir / f'{name}.result.json'
    if not cached.exists():
        cached.write_text(json.dumps(evaluate(checkpoint, workdir / f'{name}.yml')))
    return {'train_seconds': train_seconds(workdir, name), **json.loads(cached.read_text())}


def video_quality(checkpoint: Path, options_path: Path, max_frames: int | None = None) -> tuple[torch.nn.Module, dict]:
    """The network of a run and its PSNR / SSIM (RGB, no crop) on the four validation clips (all 100 frames, or
    the first ``max_frames`` of each)."""
    from effsr_core.networks import build_model_from_options
    from effsr_core.profiling.quality import VideoClipFolders, evaluate_quality

    model = build_model_from_options(options_path, checkpoint)
    video = REPO / 'data/offline/video_sr'
    dataset = VideoClipFolders(video / 'train_sharp', video / 'train_sharp_bicubic/X4', clips=list(VAL_CLIPS),
                               max_frames=max_frames)
    with torch.no_grad():
        quality = evaluate_quality(model, dataset, crop_border=0)
    return model, {'psnr': quality.psnr, 'ssim': quality.ssim}


def image_quality(checkpoint: Path, options_path: Path) -> dict:
    """PSNR / SSIM of an x4 image network on the bundled validation photos (Y channel, 4-pixel border cropped, as
    BasicSR's image SR validation)."""
    from effsr_core.networks import build_model_from_options
    from effsr_core.profiling.quality import PairedImageFolders, evaluate_quality

    model = build_model_from_options(options_path, checkpoint)
    photos = REPO / 'data/offline/image_sr/val'
    with torch.no_grad():
        quality = evaluate_quality(model, PairedImageFolders(photos / 'HR', photos / 'LR_bicubic/X4'), crop_border=4,
                                   test_y_channel=True)
    return {'psnr': quality.psnr, 'ssim': quality.ssim}


def seed_summary(results: dict[str, list[dict]], keys: Sequence[str] = ('psnr', 'ssim')) -> dict:
    """Per variant with finished runs: the mean of ``keys`` over its seeds, the PSNR spread (population standard
    deviation) and the number of runs."""
    return {name: {**{key: statistics.fmean(r[key] for r in runs) for key in keys},
                   'psnr_std': statistics.pstdev([r['psnr'] for r in runs]), 'runs': len(runs)}
            for name, runs in results.items() if runs}


def write_report_files(out: Path, report: dict, markdown: Callable[[dict], str]) -> dict:
    """``out``.json and ``out``.md of a report (rewritten after every run, so an interrupted benchmark keeps what
    it finished)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix('.json').write_text(json.dumps(report, indent=2))
    out.with_suffix('.md').write_text(markdown(report))
    return report
