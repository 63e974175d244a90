"""The offline datasets: deterministic, correct degradations, real smooth motion, readable by both toolboxes."""
import json

import cv2
import numpy as np
import pytest
import torch

from effsr_core.data import make_offline_data as data
from effsr_core.data.make_offline_data import SMALL_SIZES, VAL_CLIPS, OfflineLayout, ensure_offline_data


@pytest.fixture(scope='module')
def small_sets(tmp_path_factory):
    roots = {name: tmp_path_factory.mktemp(name) for name in ('a', 'b', 'c')}
    manifests = {name: ensure_offline_data(root, seed=1 if name == 'c' else 0, sizes=SMALL_SIZES)
                 for name, root in roots.items()}
    return roots, manifests


def _read_rgb(path):
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]


def test_same_seed_same_bytes_other_seed_other_bytes(small_sets):
    _, manifests = small_sets
    assert manifests['a']['digest'] == manifests['b']['digest']
    assert manifests['a']['digest'] != manifests['c']['digest']


def test_generation_is_skipped_when_up_to_date(small_sets, capsys):
    roots, manifests = small_sets
    assert ensure_offline_data(roots['a'], seed=0, sizes=SMALL_SIZES) == manifests['a']
    assert 'skipping generation' in capsys.readouterr().out


def test_layout_sizes_and_meta_info(offline_data):
    layout = OfflineLayout(offline_data)
    manifest = json.loads(layout.manifest.read_text())
    for split in ('train', 'val'):
        names = [line.split()[0] for line in layout.image_meta_info(split).read_text().splitlines()]
        assert names and len(names) == len(list(layout.image_hr_dir(split).glob('*.png')))
        for name in names:
            hr = _read_rgb(layout.image_hr_dir(split) / name)
            for scale in (2, 3, 4):
                lr = _read_rgb(layout.image_lr_dir(split, scale) / name.replace('.png', f'x{scale}.png'))
                assert lr.shape[:2] == (hr.shape[0] // scale, hr.shape[1] // scale)
    assert set(manifest['image_sr']['train'].values()).isdisjoint(manifest['image_sr']['val'].values())
    assert set(manifest['video_sr']['train_clips'].values()).isdisjoint(manifest['video_sr']['val_clips'].values())
    lines = layout.video_meta_info('all').read_text().splitlines()
    assert len(lines) == 12
    for line in lines:
        clip, frames, shape = line.split()
        assert frames == '100' and shape == '(256,256,3)'
        assert len(list((layout.video_gt_dir / clip).glob('*.png'))) == 100
        for degradation in ('BI', 'BD'):
            assert _read_rgb(layout.video_lr_dir(degradation) / clip / '00000099.png').shape == (64, 64, 3)
    reds4 = [line.split()[0] for line in layout.video_meta_info('REDS4').read_text().splitlines()]
    assert tuple(reds4) == VAL_CLIPS


def test_bi_is_matlab_bicubic_and_bd_is_blur_then_subsample(offline_data):
    from basicsr.data.data_util import duf_downsample
    from basicsr.utils.matlab_functions import imresize

    layout = OfflineLayout(offline_data)
    gt = _read_rgb(layout.video_gt_dir / '001' / '00000042.png')
    bi = np.clip(np.round(imresize(gt.astype(np.float32) / 255.0, 1 / 4) * 255.0), 0, 255).astype(np.uint8)
    assert np.array_equal(bi, _read_rgb(layout.video_lr_dir('BI') / '001' / '00000042.png'))
    frames = torch.from_numpy(gt.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    bd = duf_downsample(frames, kernel_size=13, scale=4)[0].permute(1, 2, 0).numpy()
    bd = np.clip(np.round(bd * 255.0), 0, 255).astype(np.uint8)
    assert np.abs(bd.astype(int) - _read_rgb(layout.video_lr_dir('BD') / '001' / '00000042.png')).max() <= 1


def test_camera_motion_is_real_smooth_and_sub_pixel(offline_data):
    clip = OfflineLayout(offline_data).video_gt_dir / '002'
    shifts = []
    for i in range(0, 99, 7):
        a, b = (cv2.imread(str(clip / f'{j:08d}.png'), cv2.IMREAD_GRAYSCALE).astype(np.float32) for j in (i, i + 1))
        shifts.append(np.hypot(*cv2.phaseCorrelate(a, b)[0]))
    assert 0.05 < np.mean(shifts) < 3.0
    assert any(abs(s - round(s)) > 0.05 for s in shifts)  # not whole-pixel jumps
    assert max(shifts) < 4.0


@pytest.mark.parametrize('backend', ['disk', 'lmdb'])
def test_basicsr_datasets_read_both_layouts(offline_data, backend):
    from basicsr.data.paired_image_dataset import PairedImageDataset
    from basicsr.data.reds_dataset import REDSRecurrentDataset

    layout = OfflineLayout(offline_data)
    lmdb = backend == 'lmdb'
    video = REDSRecurrentDataset({
        'dataroot_gt': str(layout.video_lmdb('GT') if lmdb else layout.video_gt_dir),
        'dataroot_lq': str(layout.video_lmdb('BI') if lmdb else layout.video_lr_dir('BI')),
        'meta_info_file': str(layout.video_meta_info('all')), 'val_partition': 'REDS4', 'test_mode': False,
        'io_backend': {'type': backend}, 'num_frame': 5, 'gt_size': 128, 'interval_list': [1],
        'random_reverse': False, 'use_hflip': True, 'use_rot': True, 'scale': 4})
    assert not {key.split('/')[0] for key in video.keys} & set(VAL_CLIPS)
    item = video[0]
    assert item['gt'].shape == (5, 3, 128, 128) and item['lq'].shape == (5, 3, 32, 32)
    image = PairedImageDataset({
        'dataroot_gt': str(layout.image_lmdb('train') if lmdb else layout.image_hr_dir('train')),
        'dataroot_lq': str(layout.image_lmdb('train', 4) if lmdb else layout.image_lr_dir('train', 4)),
        'filename_tmpl': '{}x4' if not lmdb else '{}', 'io_backend': {'type': backend}, 'phase': 'train',
        'gt_size': 96, 'use_hflip': True, 'use_rot': True, 'scale': 4})
    assert image[0]['gt'].shape == (3, 96, 96) and image[0]['lq'].shape == (3, 24, 24)


def test_basicsr_video_test_dataset(offline_data):
    from basicsr.data.video_test_dataset import VideoRecurrentTestDataset

    layout = OfflineLayout(offline_data)
    dataset = VideoRecurrentTestDataset({
        'name': 'REDS4', 'dataroot_gt': str(layout.video_gt_dir), 'dataroot_lq': str(layout.video_lr_dir('BI')),
        'meta_info_file': str(layout.video_meta_info('REDS4')), 'io_backend': {'type': 'disk'},
        'cache_data': True, 'num_frame': -1})
    assert len(dataset) == 4 and dataset[0]['lq'].shape == (100, 3, 64, 64)


def test_mmagic_datasets_list_the_samples(offline_data):
    import effsr_core.frameworks.mmagic_plugins  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmagic.datasets import BasicFramesDataset, BasicImageDataset

    init_default_scope('mmagic')
    frames = BasicFramesDataset(ann_file='meta_info_offline_train_GT.txt', metainfo={'dataset_type': 'offline',
                                                                                     'task_name': 'vsr'},
                                data_root=str(offline_data / 'video_sr'),
                                data_prefix={'img': 'train_sharp_bicubic/X4', 'gt': 'train_sharp'},
                                depth=1, num_input_frames=5, pipeline=[])
    assert len(frames) == 8  # one sample per training clip (GenerateSegmentIndices picks the frames)
    images = BasicImageDataset(data_root=str(offline_data / 'image_sr' / 'val'),
                               data_prefix={'img': 'LR_bicubic/X4', 'gt': 'HR'},
                               filename_tmpl={'img': '{}x4', 'gt': '{}'}, metainfo={'dataset_type': 'offline',
                                                                                  'task_name': 'sisr'},
                               pipeline=[])
    assert len(images) == len(list((offline_data / 'image_sr' / 'val' / 'HR').glob('*.png')))


def test_sizes_are_validated():
    with pytest.raises(ValueError, match='multiples of 12'):
        data.OfflineDataSizes(train_crop_size=250)
    with pytest.raises(ValueError, match='num_val_clips'):
        data.OfflineDataSizes(num_val_clips=5)
