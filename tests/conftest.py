"""Shared fixtures: the repository root, the offline data (generated once per session) and small views of it."""
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope='session')
def offline_data() -> Path:
    """The default offline datasets under <repo>/data/offline (reused when the manifest matches)."""
    from effsr_core.data.make_offline_data import ensure_offline_data

    root = REPO_ROOT / 'data' / 'offline'
    ensure_offline_data(root, seed=0)
    return root


@pytest.fixture(scope='session')
def tiny_video_val(offline_data, tmp_path_factory) -> dict:
    """Options for a quick validation set: the first 8 frames of clip 000 (links into the offline data), in the
    REDS layout that BasicSR's VideoRecurrentTestDataset (name REDS4) and MMagic's BasicFramesDataset read."""
    root = tmp_path_factory.mktemp('tiny_val')
    video = offline_data / 'video_sr'
    for kind, source in (('gt', video / 'train_sharp' / '000'), ('lq', video / 'train_sharp_bicubic' / 'X4' / '000')):
        (root / kind / '000').mkdir(parents=True)
        for frame in sorted(source.iterdir())[:8]:
            (root / kind / '000' / frame.name).symlink_to(frame)
    (root / 'meta_info.txt').write_text('000 8 (256,256,3)\n')
    return {'dataroot_gt': str(root / 'gt'), 'dataroot_lq': str(root / 'lq'),
            'meta_info_file': str(root / 'meta_info.txt')}
