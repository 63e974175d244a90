"""Offline data sets: deterministic, right sizes and degradations, real smooth motion, read by both toolboxes."""
import json

import cv2
import numpy as np
import pytest
import torch

from effsr_core.data import make_offline_data
from effsr_core.data.make_offline_data import (IMAGE_SCALES, SMALL_SIZES, TRAIN_CLIPS, VAL_CLIPS, OfflineDataSizes,
                                               OfflineLayout, ensure_offline_data)
from effsr_core.data.synthetic_video import sample_camera_path


@pytest.fixture(scope='module')
def small_sets(tmp_path_factory) -> dict:
    """Small variants: 'a' and 'b' with seed 0, 'c' with seed 1, each in its own folder."""
    seeds = {'a': 0, 'b': 0, 'c': 1}
    sets = {}
    for name, seed in seeds.items():
        root = tmp_path_factory.mktemp(f'offline_{name}')
        sets[name] = (root, ensure_offline_data(root, seed=seed, sizes=SMALL_SIZES))
    return sets


def _read(path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image


def _gray(path) -> np.ndarray:
    return cv2.cvtColor(_read(path), cv2.COLOR_BGR2GRAY).astype(np.float32)


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(small_sets):
    (root_a, manifest_a), (root_b, manifest_b), (_, manifest_c) = small_sets['a'], small_sets['b'], small_sets['c']
    assert manifest_a['digests'] == manifest_b['digests'] and manifest_a['digest'] == manifest_b['digest']
    assert (root_a / 'manifest.json').read_bytes() == (root_b / 'manifest.json').read_bytes()
    gt_file = '000/00000050.png'
    assert (OfflineLayout(root_a).video_gt_dir / gt_file).read_bytes() == \
        (OfflineLayout(root_b).video_gt_dir / gt_file).read_bytes()
    assert all(manifest_a['digests'][part] != manifest_c['digests'][part] for part in manifest_a['digests'])


def test_up_to_date_data_is_not_regenerated_but_force_does(small_sets, capsys):
    root, manifest = small_sets['a']
    make_offline_data.main(['--root', str(root), '--small'])
    assert 'skipping generation' in capsys.readouterr().out
    assert ensure_offline_data(root, seed=0, force=True, sizes=SMALL_SIZES)['digest'] == manifest['digest']
    assert 'skipping generation' not in capsys.readouterr().out


def test_missing_file_or_other_seed_triggers_regeneration(small_sets, tmp_path, capsys):
    ensure_offline_data(tmp_path, seed=0, sizes=SMALL_SIZES)
    (OfflineLayout(tmp_path).video_lr_dir('BD') / '001' / '00000007.png').unlink()
    capsys.readouterr()
    assert ensure_offline_data(tmp_path, seed=0, sizes=SMALL_SIZES)['digest'] == small_sets['a'][1]['digest']
    assert 'skipping generation' not in capsys.readouterr().out
    assert ensure_offline_data(tmp_path, seed=1, sizes=SMALL_SIZES)['digest'] == small_sets['c'][1]['digest']


def test_image_set_layout_sizes_and_meta_info(offline_data):
    layout = OfflineLayout(offline_data)
    manifest = json.loads(layout.manifest.read_text())
    sizes = OfflineDataSizes()
    assert set(manifest['image_sr']['train'].values()).isdisjoint(manifest['image_sr']['val'].values())
    assert len(manifest['image_sr']['train']) == sizes.num_train_photos * sizes.train_crops_per_photo
    for split in ('train', 'val'):
        lines = layout.image_meta_info(split).read_text().splitlines()
        assert [line.split()[0] for line in lines] == sorted(p.name for p in layout.image_hr_dir(split).glob('*.png'))
        assert [line.split()[0][:-4] for line in lines] == list(manifest['image_sr'][split])
        for line in lines:
            file_name, shape = line.split()
            hr_image = _read(layout.image_hr_dir(split) / file_name)
            assert shape == '({},{},{})'.format(*hr_image.shape)
            assert hr_image.shape[0] % 12 == 0 and hr_image.shape[1] % 12 == 0
            assert max(hr_image.shape[:2]) <= (sizes.train_crop_size if split == 'train' else sizes.val_max_size)
            for scale in IMAGE_SCALES:
                lr_image = _read(layout.image_lr_dir(split, scale) / file_name.replace('.png', f'x{scale}.png'))
                assert lr_image.shape == (hr_image.shape[0] // scale, hr_image.shape[1] // scale, 3)


def test_video_set_layout_sizes_and_meta_info(offline_data):
    layout = OfflineLayout(offline_data)
    manifest = json.loads(layout.manifest.read_text())
    assert tuple(manifest['video_sr']['val_clips']) == VAL_CLIPS
    assert tuple(manifest['video_sr']['train_clips']) == TRAIN_CLIPS
    assert set(manifest['video_sr']['train_clips'].values()).isdisjoint(manifest['video_sr']['val_clips'].values())
    assert len(set(manifest['video_sr']['val_clips'].values())) == len(VAL_CLIPS)
    expected = {'all': sorted(VAL_CLIPS + TRAIN_CLIPS), 'REDS4': list(VAL_CLIPS), 'train': list(TRAIN_CLIPS)}
    for subset, clips in expected.items():
        lines = [line.split(' ') for line in layout.video_meta_info(subset).read_text().splitlines()]
        assert [clip for clip, _, _ in lines] == clips
        assert all(frames == '100' and shape == '(256,256,3)' for _, frames, shape in lines)
    assert sorted(p.name for p in layout.video_gt_dir.iterdir()) == expected['all']
    for clip in expected['all']:
        gt_names = sorted(p.name for p in (layout.video_gt_dir / clip).iterdir())
        assert gt_names == [f'{index:08d}.png' for index in range(100)]
        assert _read(layout.video_gt_dir / clip / gt_names[-1]).shape == (256, 256, 3)
        for degradation in ('BI', 'BD'):
            assert sorted(p.name for p in (layout.video_lr_dir(degradation) / clip).iterdir()) == gt_names
            assert _read(layout.video_lr_dir(degradation) / clip / gt_names[0]).shape == (64, 64, 3)


def test_bi_is_matlab_bicubic_and_bd_is_duf_downsample(offline_data):
    from basicsr.data.data_util import duf_downsample
    from basicsr.utils.matlab_functions import imresize

    layout = OfflineLayout(offline_data)
    frame_file = '015/00000042.png'
    gt = _read(layout.video_gt_dir / frame_file).astype(np.float32) / 255.0
    bi = np.clip(np.round(imresize(gt, 1 / 4) * 255.0), 0, 255).astype(np.uint8)
    assert np.array_equal(bi, _read(layout.video_lr_dir('BI') / frame_file))
    bd = duf_downsample(torch.from_numpy(gt.transpose(2, 0, 1))[None], kernel_size=13, scale=4)[0]
    bd = np.clip(np.round(bd.numpy().transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
    assert np.array_equal(bd, _read(layout.video_lr_dir('BD') / frame_file))
    hr_image = _read(layout.image_hr_dir('val') / '0031.png').astype(np.float32) / 255.0
    lr_image = np.clip(np.round(imresize(hr_image, 1 / 3) * 255.0), 0, 255).astype(np.uint8)
    assert np.array_equal(lr_image, _read(layout.image_lr_dir('val', 3) / '0031x3.png'))


@pytest.mark.parametrize('clip', ['000', '005'])
def test_camera_motion_is_real_smooth_and_small(offline_data, clip):
    folder = OfflineLayout(offline_data).video_gt_dir / clip
    window = cv2.createHanningWindow((256, 256), cv2.CV_32F)
    frames = [_gray(folder / f'{index:08d}.png') for index in range(0, 99, 3)]
    frames_next = [_gray(folder / f'{index + 1:08d}.png') for index in range(0, 99, 3)]
    shifts = np.array([cv2.phaseCorrelate(a, b, window)[0] for a, b in zip(frames, frames_next)])
    magnitudes = np.hypot(shifts[:, 0], shifts[:, 1])
    assert all(np.any(a != b) for a, b in zip(frames, frames_next))
    assert 0.05 < magnitudes.mean() < 3.0
    assert magnitudes.max() < 3.5
    # Smooth: the motion three frames later is close to the motion now (median, as phase correlation is biased
    # near half-pixel shifts; test_camera_path_is_smooth_and_in_range checks the exact motion).
    assert np.median(np.abs(np.diff(shifts, axis=0))) < 0.15


def test_camera_path_is_smooth_and_in_range():
    path = sample_camera_path(np.random.default_rng(3), 100)
    steps = np.diff(path.centers, axis=0) / path.scales[:-1, None]
    speeds = np.hypot(steps[:, 0], steps[:, 1])
    assert speeds.max() < 2.1 and np.abs(np.diff(steps, axis=0)).max() < 0.1
    assert np.all(np.abs(np.log(path.scales)) <= 0.1)
    assert np.abs(np.rad2deg(path.angles)).max() < 3.5


@pytest.mark.parametrize('backend', ['disk', 'lmdb'])
def test_basicsr_training_datasets_read_folders_and_lmdb(offline_data, backend):
    from basicsr.data.paired_image_dataset import PairedImageDataset
    from basicsr.data.reds_dataset import REDSRecurrentDataset

    layout = OfflineLayout(offline_data)
    use_lmdb = backend == 'lmdb'
    for degradation in ('BI', 'BD'):
        videos = REDSRecurrentDataset({
            'dataroot_gt': str(layout.video_lmdb('GT') if use_lmdb else layout.video_gt_dir),
            'dataroot_lq': str(layout.video_lmdb(degradation) if use_lmdb else layout.video_lr_dir(degradation)),
            'meta_info_file': str(layout.video_meta_info('all')), 'val_partition': 'REDS4', 'test_mode': False,
            'io_backend': {'type': backend}, 'num_frame': 5, 'gt_size': 128, 'interval_list': [1],
            'random_reverse': False, 'use_hflip': True, 'use_rot': True, 'scale': 4})
        assert len(videos) == len(TRAIN_CLIPS) * 100
        assert {key.split('/')[0] for key in videos.keys} == set(TRAIN_CLIPS)
        sample = videos[123]
        assert sample['gt'].shape == (5, 3, 128, 128) and sample['lq'].shape == (5, 3, 32, 32)
    for split, phase in (('train', 'train'), ('val', 'val')):
        images = PairedImageDataset({
            'dataroot_gt': str(layout.image_lmdb(split) if use_lmdb else layout.image_hr_dir(split)),
            'dataroot_lq': str(layout.image_lmdb(split, 4) if use_lmdb else layout.image_lr_dir(split, 4)),
            'meta_info_file': None if use_lmdb else str(layout.image_meta_info(split)), 'filename_tmpl': '{}x4',
            'io_backend': {'type': backend}, 'phase': phase, 'gt_size': 96, 'use_hflip': True, 'use_rot': True,
            'scale': 4})
        assert len(images) == len(list(layout.image_hr_dir(split).glob('*.png')))
        sample = images[0]
        if phase == 'train':
            assert sample['gt'].shape == (3, 96, 96) and sample['lq'].shape == (3, 24, 24)
        else:
            assert sample['gt'].shape[1:] == (sample['lq'].shape[1] * 4, sample['lq'].shape[2] * 4)


def test_basicsr_reds4_test_dataset(offline_data):
    from basicsr.data.video_test_dataset import VideoRecurrentTestDataset

    layout = OfflineLayout(offline_data)
    dataset = VideoRecurrentTestDataset({
        'name': 'REDS4', 'dataroot_gt': str(layout.video_gt_dir), 'dataroot_lq': str(layout.video_lr_dir('BI')),
        'meta_info_file': str(layout.video_meta_info('REDS4')), 'io_backend': {'type': 'disk'},
        'cache_data': True, 'num_frame': -1, 'padding': 'reflection_circle'})
    assert dataset.folders == list(VAL_CLIPS)
    sample = dataset[0]
    assert sample['lq'].shape == (100, 3, 64, 64) and sample['gt'].shape == (100, 3, 256, 256)


def test_mmagic_datasets_list_the_samples(offline_data):
    from mmengine.registry import init_default_scope

    from mmagic.datasets import BasicFramesDataset, BasicImageDataset

    init_default_scope('mmagic')
    metainfo = {'dataset_type': 'offline_reds', 'task_name': 'vsr'}
    video_root = str(offline_data / 'video_sr')
    train_clips = BasicFramesDataset(ann_file='meta_info_offline_train_GT.txt', metainfo=metainfo,
                                     data_root=video_root,
                                     data_prefix={'img': 'train_sharp_bicubic/X4', 'gt': 'train_sharp'},
                                     depth=1, num_input_frames=15, pipeline=[])
    assert len(train_clips) == len(TRAIN_CLIPS)
    train_samples = [train_clips.get_data_info(index) for index in range(len(train_clips))]
    assert [sample['key'] for sample in train_samples] == list(TRAIN_CLIPS)
    assert all(sample['sequence_length'] == 100 for sample in train_samples)
    val_clips = BasicFramesDataset(ann_file='meta_info_offline_REDS4_GT.txt', metainfo=metainfo,
                                   data_root=video_root,
                                   data_prefix={'img': 'train_sharp_BDx4/X4', 'gt': 'train_sharp'},
                                   depth=1, num_input_frames=100, fixed_seq_len=100, pipeline=[], test_mode=True)
    assert [val_clips.get_data_info(index)['key'] for index in range(len(val_clips))] == list(VAL_CLIPS)

    image_root = offline_data / 'image_sr'
    for split in ('train', 'val'):
        images = BasicImageDataset(ann_file=f'meta_info_{split}.txt', metainfo={'dataset_type': 'offline_sr',
                                                                                'task_name': 'sisr'},
                                   data_root=str(image_root),
                                   data_prefix={'img': f'{split}/LR_bicubic/X4', 'gt': f'{split}/HR'},
                                   filename_tmpl={'img': '{}x4', 'gt': '{}'}, pipeline=[])
        assert len(images) == len(list((image_root / split / 'HR').glob('*.png')))
        sample = images.get_data_info(0)
        assert cv2.imread(sample['img_path']) is not None and cv2.imread(sample['gt_path']) is not None
    folder_images = BasicImageDataset(data_root=str(image_root / 'val'), data_prefix={'img': 'LR_bicubic/X4',
                                                                                      'gt': 'HR'},
                                      filename_tmpl={'img': '{}x4', 'gt': '{}'}, pipeline=[])
    assert len(folder_images) == len(list((image_root / 'val' / 'HR').glob('*.png')))


def test_sizes_are_validated():
    with pytest.raises(ValueError, match='multiples of 12'):
        OfflineDataSizes(train_crop_size=250)
    with pytest.raises(ValueError, match='num_val_clips'):
        OfflineDataSizes(num_val_clips=5)
