"""Plugin registration in both toolboxes and the BasicSR / MMagic entry points."""
import os
import subprocess
import sys

import pytest
import torch
import yaml

from effsr_core import registry


@pytest.fixture(scope='module')
def registered():
    import effsr_core.basicsr  # noqa: F401
    import effsr_core.mmagic  # noqa: F401
    return {kind: registry.components(kind) for kind in registry.KINDS}


def test_components_are_visible_in_both_toolboxes(registered):
    from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY
    from mmagic.registry import HOOKS, MODELS

    assert {'RFDN', 'SSLBasicVSR'} <= set(registered['arch']) and 'TemporalFinetuneLoss' in registered['loss']
    for name, cls in registered['arch'].items():
        assert ARCH_REGISTRY.get(name) is cls and MODELS.get(name) is cls
    for name, cls in registered['loss'].items():
        assert LOSS_REGISTRY.get(name) is cls and MODELS.get(name) is cls
    assert MODEL_REGISTRY.get('SSLPruningModel') and MODELS.get('SSLPruningVSR') and HOOKS.get('SSLPruningHook')


def _write_clips(root, clips, frames, size):
    import cv2
    import numpy as np

    for clip in clips:
        (root / clip).mkdir(parents=True)
        for index in range(frames):
            cv2.imwrite(str(root / clip / f'{index:08d}.png'), np.full((size, size, 3), index * 10, np.uint8))


def test_subset_video_test_dataset_keeps_the_chosen_clips_and_first_frames(tmp_path, registered):
    """The validation set of the main job's demos: BasicSR's VideoRecurrentTestDataset, one short clip."""
    from basicsr.data import build_dataset

    _write_clips(tmp_path / 'gt', ('000', '011'), frames=6, size=16)
    _write_clips(tmp_path / 'lq', ('000', '011'), frames=6, size=4)
    (tmp_path / 'meta.txt').write_text('000 6 (16,16,3)\n011 6 (16,16,3)\n')
    opt = dict(name='REDS4', type='VideoRecurrentSubsetTestDataset', dataroot_gt=str(tmp_path / 'gt'),
               dataroot_lq=str(tmp_path / 'lq'), meta_info_file=str(tmp_path / 'meta.txt'), cache_data=True,
               io_backend=dict(type='disk'), num_frame=-1, phase='val', scale=4)
    dataset = build_dataset({**opt, 'clips': ['011'], 'max_frames': 4})
    assert len(dataset) == 1 and dataset.data_info['folder'] == ['011'] * 4
    assert dataset.data_info['idx'] == ['0/4', '1/4', '2/4', '3/4']
    sample = dataset[0]
    assert sample['folder'] == '011' and sample['lq'].shape == (4, 3, 4, 4) and sample['gt'].shape == (4, 3, 16, 16)
    assert torch.allclose(sample['gt'][:, 0, 0, 0], torch.tensor([0, 10, 20, 30]) / 255.0)
    everything = build_dataset(opt)  # without the two keys: BasicSR's dataset, every clip and frame
    assert len(everything) == 2 and len(everything.data_info['folder']) == 12
    with pytest.raises(ValueError, match='clips: 020 not in the dataset'):
        build_dataset({**opt, 'clips': ['020']})
    with pytest.raises(ValueError, match='max_frames: 0 is out of range'):
        build_dataset({**opt, 'max_frames': 0})


def test_registration_is_idempotent_and_refuses_name_clashes(registered):
    from effsr_core.basicsr import register_all as register_basicsr
    from effsr_core.mmagic import register_all as register_mmagic

    register_basicsr()
    register_mmagic()
    with pytest.raises(KeyError, match='registered twice'):
        registry.register('arch', name='RFDN')(type('OtherRFDN', (torch.nn.Module,), {}))
    from mmagic.registry import MODELS

    clash = type('BasicVSRNet', (torch.nn.Module,), {})
    registry._components['arch']['BasicVSRNet'] = clash
    try:
        with pytest.raises(KeyError, match="MMagic already has a component named 'BasicVSRNet'"):
            register_mmagic()
    finally:
        del registry._components['arch']['BasicVSRNet']
    assert MODELS.get('BasicVSRNet') is not clash


def _run(args, cwd, timeout=900):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_entry_point_reports_bad_options_in_one_line(tmp_path, repo_root):
    with open(repo_root / 'options/basicsr/demo/train_BasicVSR_tiny_offline.yml') as f:
        opt = yaml.safe_load(f)
    opt['network_g']['type'] = 'BasicVSRR'
    bad = tmp_path / 'bad.yml'
    bad.write_text(yaml.safe_dump(opt))
    result = _run(['-m', 'effsr_core.train', '-opt', str(bad)], tmp_path)
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert "network_g.type: 'BasicVSRR' is not one of the allowed values" in result.stderr
    assert "Did you mean 'BasicVSR'" in result.stderr
    result = _run(['-m', 'effsr_core.train', '-opt', str(tmp_path / 'missing.yml')], tmp_path)
    assert result.returncode != 0 and 'does not exist' in result.stderr


@pytest.mark.slow
def test_main_job_options_train_validate_checkpoint_and_resume(tmp_path, repo_root, offline_data, tiny_video_val):
    """The main job's first step (BasicSR's own BasicVSR + VideoRecurrentModel) for a few iterations on CPU."""
    with open(repo_root / 'options/basicsr/demo/train_BasicVSR_tiny_offline.yml') as f:
        opt = yaml.safe_load(f)
    for key in ('dataroot_gt', 'dataroot_lq', 'meta_info_file'):
        opt['datasets']['train'][key] = str(repo_root / opt['datasets']['train'][key])
    opt['datasets']['val'].update(tiny_video_val)
    opt['datasets']['train'].update(num_frame=2, num_worker_per_gpu=0, batch_size_per_gpu=1)
    opt['train']['total_iter'] = 2
    opt['logger'].update(print_freq=1, save_checkpoint_freq=1)
    opt['val']['val_freq'] = 1
    options = tmp_path / 'demo.yml'
    options.write_text(yaml.safe_dump(opt))
    result = _run(['-m', 'effsr_core.train', '-opt', str(options)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert log.count('Validation REDS4') >= 2 and '# psnr:' in log
    opt['train']['total_iter'] = 3
    options.write_text(yaml.safe_dump(opt))
    result = _run(['-m', 'effsr_core.train', '-opt', str(options), '--auto_resume'], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'Resuming training from epoch: 0, iter: 2' in result.stdout + result.stderr


@pytest.mark.slow
def test_mim_train_mmagic_with_custom_imports(tmp_path, repo_root, offline_data):
    """`mim train mmagic <config>`: MMagic imports itself before custom_imports load the plugins."""
    mim = os.path.join(os.path.dirname(sys.executable), 'mim')
    config = repo_root / 'options/mmagic/demo/basicvsr_tiny_offline.py'
    data_root = offline_data / 'video_sr'
    result = subprocess.run(
        [mim, 'train', 'mmagic', str(config), '--work-dir', str(tmp_path / 'work'), '--cfg-options',
         'train_cfg.max_iters=3', 'train_cfg.val_interval=1000', 'default_hooks.logger.interval=1',
         'default_hooks.checkpoint.interval=3', f'train_dataloader.dataset.data_root={data_root}',
         'train_dataloader.num_workers=0', 'train_dataloader.dataset.num_input_frames=2',
         'val_dataloader=None', 'val_cfg=None', 'val_evaluator=None'],
        cwd=tmp_path, capture_output=True, text=True, timeout=900)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert 'Iter(train) [3/3]' in log and (tmp_path / 'work' / 'iter_3.pth').is_file()
    state = torch.load(tmp_path / 'work' / 'iter_3.pth', map_location='cpu', weights_only=False)['state_dict']
    assert 'generator.forward_trunk.conv_in.weight' in state  # the plugin's SSLBasicVSR was built
