"""Multigrid in BasicSR: the data path, MultigridLR on BasicSR's own models, stage logs, resume, SSL fine-tuning,
the SpyNet fix for 32-px frames, the option refusals and the shipped configs."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from bad_options import DROP, changed, refused_train

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO = REPO_ROOT / 'options/basicsr/multigrid/demo_multigrid_BasicVSR_tiny_offline.yml'
SSL_DEMO = REPO_ROOT / 'options/basicsr/ssl/demo_SSL_BasicVSR_tiny_offline.yml'
LOG_LINE = re.compile(r'iter:\s*([\d,]+), lr:\(([^,]+),.*multigrid/stage: (\S+) multigrid/patch: (\S+) '
                      r'multigrid/frames: (\S+)')


def _absolute_paths(opt: dict, repo_root: Path) -> dict:
    for phase in opt['datasets'].values():
        for key in ('dataroot_gt', 'dataroot_lq', 'meta_info_file'):
            phase[key] = str(repo_root / phase[key])
    return opt


@pytest.fixture(scope='module')
def demo_options(repo_root, offline_data) -> dict:
    """The shipped demo, with paths into the offline data; it passes the check as it is."""
    import effsr_core.basicsr  # noqa: F401

    return _absolute_paths(yaml.safe_load(DEMO.read_text()), repo_root)


# ------------------------------------------------------------------------------------------- configs
def test_generated_configs_are_up_to_date():
    spec = importlib.util.spec_from_file_location('make_multigrid_options',
                                                  REPO_ROOT / 'scripts/make_multigrid_options.py')
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    files = generator.render_all()
    stale = [str(path.relative_to(REPO_ROOT)) for path, text in files.items()
             if not path.is_file() or path.read_text() != text]
    assert not stale, f'run scripts/make_multigrid_options.py: {stale[:5]}'
    shipped = set((REPO_ROOT / 'options/basicsr/multigrid').rglob('*.yml'))
    assert shipped == set(files), 'a shipped multigrid config has no generator'


def test_paper_configs_use_the_paper_sizes_and_lr():
    from effsr_core.basicsr.options_check import check_basicsr_options
    from multigrid_plugin.basicsr.settings import BasicSRMultigrid
    from basicsr.utils.registry import MODEL_REGISTRY

    import effsr_core.basicsr  # noqa: F401

    expected = {'REDS': ((32, 64), (7, 11, 15)), 'Vimeo90K': ((32, 64), (6, 10, 14))}
    # the linear scaling rule from each baseline of Table 1 to batch 64: BasicVSR-M 16 / 2e-4, BasicVSR 32 / 2e-4,
    # EDVR-M (BasicSR's) 32 / 4e-4
    scaled_lr = {'BasicVSR-M': 8e-4, 'BasicVSR': 4e-4, 'EDVR-M': 8e-4}
    for path in sorted((REPO_ROOT / 'options/basicsr/multigrid').rglob('*_multigrid.yml')):
        opt = yaml.safe_load(path.read_text())
        check_basicsr_options(opt, check_paths=False)
        run = BasicSRMultigrid.from_options(opt, MODEL_REGISTRY.get(opt['model_type']))
        spatial, temporal = expected[opt['datasets']['train']['name']]
        network = opt['name'].split('_')[0]
        assert run.schedule.spatial_sizes == spatial
        assert opt['train']['optim_g']['lr'] == pytest.approx(scaled_lr[network])
        assert opt['datasets']['train']['batch_size_per_gpu'] * 8 == 64 and run.settings.warmup_iter == 5000
        if opt['model_type'] == 'EDVRModel':
            assert {s.frames for s in run.schedule.stages} == {opt['datasets']['train']['num_frame']}
        else:
            assert run.schedule.temporal_sizes == temporal and run.schedule.num_stages == 6


# ------------------------------------------------------------------------------------------- data path
def test_vimeo_recurrent_dataset_reads_the_central_frames_of_each_stage(tmp_path):
    """BasicSR's Vimeo90KRecurrentDataset (disk), septuplets mirrored to 14 frames: a 6-frame stage reads im3-im5."""
    import cv2
    import numpy as np
    from basicsr.data import build_dataset

    from multigrid_plugin.basicsr.datasets import reshape
    from multigrid_plugin.sampling import MultigridDataset

    for kind, size in (('GT', 32), ('LQ', 8)):
        folder = tmp_path / kind / '00001' / '0001'
        folder.mkdir(parents=True)
        for index in range(1, 8):
            cv2.imwrite(str(folder / f'im{index}.png'), np.full((size, size, 3), index * 10, np.uint8))
    (tmp_path / 'meta_info.txt').write_text('00001/0001 7 (32,32,3)\n')
    dataset = MultigridDataset(build_dataset(dict(
        name='Vimeo', type='Vimeo90KRecurrentDataset', dataroot_gt=str(tmp_path / 'GT'),
        dataroot_lq=str(tmp_path / 'LQ'), meta_info_file=str(tmp_path / 'meta_info.txt'), io_backend=dict(type='disk'),
        num_frame=-1, gt_size=32, interval_list=[1], random_reverse=False, use_hflip=False, use_rot=False,
        flip_sequence=True, scale=4, phase='train')), reshape)
    sample = dataset[(0, 4, 6)]
    assert sample['lq'].shape == (6, 3, 4, 4) and sample['gt'].shape == (6, 3, 16, 16)
    assert [round(float(v) * 255) for v in sample['lq'][:, 0, 0, 0]] == [30, 40, 50, 50, 40, 30]
    assert dataset[0]['lq'].shape == (14, 3, 8, 8)  # as configured again


def test_reds_recurrent_dataset_reads_each_stage_shape_from_lmdb_and_is_restored(demo_options, offline_data):
    from basicsr.data import build_dataset

    from multigrid_plugin.basicsr.datasets import reshape
    from multigrid_plugin.sampling import MultigridDataset

    lmdb = offline_data / 'video_sr_lmdb'
    dataset_opt = dict(demo_options['datasets']['train'], phase='train', scale=4,
                       dataroot_gt=str(lmdb / 'train_sharp_with_val.lmdb'),
                       dataroot_lq=str(lmdb / 'train_sharp_bicubic_with_val.lmdb'),
                       io_backend=dict(type='lmdb'))
    dataset = MultigridDataset(build_dataset(dataset_opt), reshape)
    sample = dataset[(0, 32, 3)]
    assert sample['lq'].shape == (3, 3, 32, 32) and sample['gt'].shape == (3, 3, 128, 128)
    assert dataset[0]['lq'].shape == (5, 3, 48, 48)


def test_reds_recurrent_dataset_reads_each_stage_shape_and_is_restored(demo_options):
    from basicsr.data import build_dataset

    from multigrid_plugin.basicsr.datasets import reshape
    from multigrid_plugin.sampling import MultigridDataset

    dataset_opt = dict(demo_options['datasets']['train'], phase='train', scale=4)
    dataset = MultigridDataset(build_dataset(dataset_opt), reshape)
    for patch, frames in ((32, 3), (48, 5), (40, 2)):
        sample = dataset[(0, patch, frames)]
        assert sample['lq'].shape == (frames, 3, patch, patch)
        assert sample['gt'].shape == (frames, 3, 4 * patch, 4 * patch)
    assert dataset.opt['gt_size'] == 192 and dataset.num_frame == 5
    assert dataset[0]['lq'].shape == (5, 3, 48, 48)


def test_pipeline_wrappers_are_installed_once():
    import basicsr.train

    from multigrid_plugin.basicsr.pipeline import install

    assert install() is False
    assert basicsr.train.create_train_val_dataloader.__wrapped__.__module__ == 'basicsr.train'
    assert basicsr.train.build_model.__wrapped__.__module__ == 'basicsr.models'


def test_schedule_plot(tmp_path):
    from multigrid_plugin.options import MULTIGRID, resolve
    from multigrid_plugin.plot import plot_schedule, plotted_iterations

    settings = resolve(MULTIGRID.check({'warmup_iter': 5000}), 30_000, baseline_patch_size=64, baseline_frames=15)
    schedule = settings.schedule
    iterations = plotted_iterations(schedule)
    assert len(iterations) <= 2000 + 2 * schedule.num_stages
    assert all(s.first_iter in iterations and s.last_iter in iterations for s in schedule.stages)
    path = plot_schedule(settings, str(tmp_path / 'schedule.png'), base_lr=8e-4)
    assert Path(path).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


# ------------------------------------------------------------------------------------------- SpyNet
def test_basicsr_spynet_takes_32_pixel_frames_and_is_unchanged_where_it_worked(monkeypatch):
    import effsr_core.basicsr  # noqa: F401
    from basicsr.archs import spynet_arch

    from effsr_core.compat import fixes

    patched = spynet_arch.SpyNet.process
    assert fixes._is_patched(patched) and fixes.basicsr_spynet_small_frames(spynet_arch) is False  # idempotent
    torch.manual_seed(0)
    net = spynet_arch.SpyNet().eval()
    sizes = ((64, 64), (40, 72), (33, 97), (32, 32), (16, 48))
    frames = {size: (torch.rand(2, 3, *size), torch.rand(2, 3, *size)) for size in sizes}
    with torch.no_grad():
        fixed = {size: net(*pair) for size, pair in frames.items()}
        monkeypatch.setattr(spynet_arch.SpyNet, 'process', patched.__wrapped__)
        for size in ((64, 64), (40, 72), (33, 97)):
            assert torch.equal(net(*frames[size]), fixed[size]), size
        with pytest.raises(RuntimeError):
            net(*frames[(32, 32)])
    for size in ((32, 32), (16, 48)):
        assert fixed[size].shape == (2, 2, *size) and torch.isfinite(fixed[size]).all()


# ------------------------------------------------------------------------------------------- refusals
def test_the_demo_options_are_accepted(monkeypatch, tmp_path, demo_options):
    with pytest.raises(AssertionError, match='accepted'):
        refused_train(monkeypatch, tmp_path, demo_options)


REFUSALS = {
    'GT patch larger than the frames': ({'multigrid.spatial_sizes': [32, 80]}, r'multigrid\.spatial_sizes: 320'),
    'gt_size not divisible by scale': ({'datasets.train.gt_size': 190}, r'datasets\.train\.gt_size'),
    'more frames than a clip has': ({'multigrid.temporal_sizes': [3, 120]}, r'multigrid\.temporal_sizes: 120'),
    'fewer frames than the model needs': ({'multigrid.temporal_sizes': [1, 5]}, r'multigrid\.temporal_sizes: 1'),
    'stages not adding up': ({'multigrid.stage_iters': [6, 6, 6, 7]}, r'multigrid\.stage_iters: .*adds up to 25'),
    'schedule longer than training': ({'train.total_iter': 3}, r'train\.total_iter'),
    'temporal cycle, sliding-window model': ({'model_type': 'EDVRModel', 'train.flow_lr_mul': DROP},
                                             r'multigrid\.mode: .*EDVRModel.*mode: spatial'),
    'temporal cycle, sliding-window dataset': ({'datasets.train.type': 'REDSDataset'},
                                               r'multigrid\.mode: .*REDSDataset'),
    'BasicSR warmup on': ({'train.warmup_iter': 10}, r'train\.warmup_iter: 10'),
    'scheduler settings outside the section': ({'train.scheduler': {'type': 'MultigridLR', 'eta_min': 0}},
                                               r'train\.scheduler\.eta_min'),
    'MultigridLR without the section': ({'multigrid': DROP}, r'train\.scheduler\.type: MultigridLR'),
    'LR keys without MultigridLR': ({'train.scheduler': {'type': 'CosineAnnealingRestartLR', 'periods': [24],
                                                         'restart_weights': [1]}}, r'multigrid\.warmup_iter'),
    'section on an image model': ({'model_type': 'SRModel'}, r'multigrid: .*VideoBaseModel.*SRModel'),
    'bad cycle': ({'multigrid.spatial_sizes': [48, 32]}, r'multigrid\.spatial_sizes.*increasing'),
}


@pytest.mark.parametrize('case', REFUSALS, ids=list(REFUSALS))
def test_bad_multigrid_options_are_refused_before_anything_is_written(monkeypatch, tmp_path, demo_options, case):
    changes, pattern = REFUSALS[case]
    message = refused_train(monkeypatch, tmp_path, changed(demo_options, changes))
    assert re.search(pattern, message), message


# ------------------------------------------------------------------------------------------- real trainings
def _run(opt: dict, workdir: Path, *extra: str) -> str:
    """``python -m effsr_core.train`` in ``workdir``; returns its log file's text."""
    options = workdir / f'{opt["name"]}.yml'
    options.write_text(yaml.safe_dump(opt))
    env = {'PYTHONPATH': str(REPO_ROOT), 'OMP_NUM_THREADS': '1', 'OMP_WAIT_POLICY': 'PASSIVE', 'PATH': '/usr/bin:/bin'}
    result = subprocess.run([sys.executable, '-m', 'effsr_core.train', '-opt', str(options), *extra], cwd=workdir,
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    logs = sorted((workdir / 'experiments' / opt['name']).glob('train_*.log'))
    return logs[-1].read_text()


def _iterations(log: str) -> dict[int, tuple[float, int, int, int]]:
    """``{iteration: (lr, stage, patch, frames)}`` from the printed log lines (print_freq 1)."""
    return {int(m[1].replace(',', '')): (float(m[2]), int(float(m[3])), int(float(m[4])), int(float(m[5])))
            for m in LOG_LINE.finditer(log)}


def _expected(run, base_lr: float) -> dict[int, tuple[float, int, int, int]]:
    from multigrid_plugin.lr_schedule import multigrid_lr

    settings = run.settings
    expected = {}
    for iteration in range(1, run.offset + run.schedule.total_iter + 1):
        stage, patch, frames = run(iteration)
        lr = (base_lr if stage < 0 else
              multigrid_lr(run.schedule, iteration - run.offset, base_lr, settings.eta_min, settings.warmup_iter,
                           settings.form))
        expected[iteration] = (lr, stage + 1, patch, frames)
    return expected


def _assert_matches(logged: dict, expected: dict) -> None:
    for iteration, (lr, stage, patch, frames) in logged.items():
        assert (stage, patch, frames) == expected[iteration][1:], iteration
        assert lr == pytest.approx(expected[iteration][0], rel=1e-3), iteration


@pytest.fixture
def small_run(demo_options) -> dict:
    """The demo at its smallest: 4 stages of 2 iterations (LR 32 / 40 px x 2 / 3 frames), 2 workers, no validation."""
    opt = changed(demo_options, {'datasets.val': DROP, 'val': DROP, 'datasets.train.num_worker_per_gpu': 2,
                                 'datasets.train.num_frame': 3, 'datasets.train.gt_size': 160,
                                 'multigrid.spatial_sizes': [32, 40], 'multigrid.temporal_sizes': [2, 3],
                                 'multigrid.warmup_iter': 2, 'train.total_iter': 8, 'logger.print_freq': 1,
                                 'logger.save_checkpoint_freq': 3, 'logger.use_tb_logger': False})
    opt['name'] = 'multigrid_small'
    return opt


@pytest.mark.slow
def test_training_follows_the_schedule_and_resumes_mid_stage(small_run, tmp_path):
    """Every iteration trains at its stage's shape and LR; a run resumed at iteration 3 (inside stage 2) trains
    iterations 4-8 exactly as the uninterrupted run did."""
    from basicsr.utils.registry import MODEL_REGISTRY

    from multigrid_plugin.basicsr.settings import BasicSRMultigrid

    run = BasicSRMultigrid.from_options(small_run, MODEL_REGISTRY.get(small_run['model_type']))
    expected = _expected(run, small_run['train']['optim_g']['lr'])
    log = _run(small_run, tmp_path)
    logged = _iterations(log)
    assert sorted(logged) == list(range(1, 9)) and {v[1] for v in logged.values()} == {1, 2, 3, 4}
    _assert_matches(logged, expected)
    for stage in run.schedule.stages:  # one line per stage change, with its shape
        assert f'iteration {stage.first_iter}: stage {stage.index + 1}/4, LR patch {stage.patch_size}x' in log
    assert (tmp_path / 'experiments/multigrid_small/multigrid_schedule.png').is_file()

    experiment = tmp_path / 'experiments/multigrid_small'
    for path in (experiment / 'training_states/6.state', experiment / 'models/net_g_6.pth'):
        path.unlink()  # as if the run had stopped after iteration 3
    resumed = _iterations(_run(small_run, tmp_path, '--auto_resume'))
    assert sorted(resumed) == list(range(4, 9))
    _assert_matches(resumed, expected)
    assert {i: v[1:] for i, v in resumed.items()} == {i: logged[i][1:] for i in resumed}


@pytest.mark.slow
def test_ssl_pruning_fine_tunes_with_multigrid(repo_root, offline_data, tmp_path):
    """SSLPruningModel: the regularisation trains at the dataset's shape with the LR held; fine-tuning follows the
    multigrid stages and MultigridLR from the prune iteration."""
    import effsr_core.basicsr  # noqa: F401
    from basicsr.utils.registry import MODEL_REGISTRY

    from multigrid_plugin.basicsr.settings import BasicSRMultigrid

    opt = _absolute_paths(yaml.safe_load(SSL_DEMO.read_text()), repo_root)
    opt = changed(opt, {'datasets.val': DROP, 'val': DROP, 'path.pretrain_network_g': None,
                        'pruning.regularization': {'delta': 0.05, 'tau': 0.1, 't1': 1, 't2': 2},
                        'train.total_iter': 8, 'train.scheduler': {'type': 'MultigridLR'},
                        'datasets.train.num_worker_per_gpu': 2, 'logger.print_freq': 1,
                        'logger.save_checkpoint_freq': 100, 'logger.use_tb_logger': False})
    opt['name'] = 'multigrid_ssl'
    opt['multigrid'] = {'spatial_sizes': [32, 40], 'temporal_sizes': [2, 3], 'warmup_iter': 0}
    run = BasicSRMultigrid.from_options(opt, MODEL_REGISTRY.get('SSLPruningModel'))
    assert run.offset == 4 and run.schedule.total_iter == 4
    logged = _iterations(_run(opt, tmp_path))
    assert sorted(logged) == list(range(1, 9))
    _assert_matches(logged, _expected(run, opt['train']['optim_g']['lr']))
    assert [logged[i][2:] for i in range(1, 9)] == [(32, 3)] * 4 + [(32, 2), (32, 3), (40, 2), (40, 3)]


def test_the_model_and_its_scheduler_read_the_loader_wrappers_settings(monkeypatch, demo_options):
    """The train loader wrapper resolves the section once; the model built next receives that object (nothing
    resolves it again) and so does MultigridLR."""
    from basicsr.models.video_recurrent_model import VideoRecurrentModel

    from multigrid_plugin.basicsr import pipeline
    from multigrid_plugin.basicsr.model import multigrid_model_class
    from multigrid_plugin.basicsr.settings import BasicSRMultigrid

    opt = changed(demo_options, {'datasets.val': DROP, 'val': DROP})
    opt.update(is_train=True, dist=False, num_gpu=0, rank=0, world_size=1)
    run = BasicSRMultigrid.from_options(opt, VideoRecurrentModel)
    pipeline._RESOLVED[id(opt)] = (opt, run)
    monkeypatch.setattr(BasicSRMultigrid, 'from_options', None)  # a second resolution would fail
    model = multigrid_model_class(VideoRecurrentModel)(opt, multigrid=pipeline._take_resolved(opt))
    assert model.multigrid is run and pipeline._take_resolved(opt) is None  # handed on once
    scheduler, = model.schedulers
    assert scheduler.settings is run.settings and scheduler.schedule is run.schedule
