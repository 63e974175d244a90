"""Multigrid in MMagic's runner (MultigridHook + MultigridLR): the settings are written once (to the hook) and both
read the same object, every iteration's input shape and LR follow the schedule with workers, a resumed run equals an
uninterrupted one, SSL fine-tuning composes, bad configs are refused."""
import copy
from pathlib import Path

import pytest
import torch

CONFIG = 'options/mmagic/multigrid/basicvsr_multigrid_tiny_offline.py'
SSL_CONFIG = 'options/mmagic/ssl/ssl_basicvsr_tiny_offline.py'
MULTIGRID = dict(spatial_sizes=[16, 32], temporal_sizes=[2, 3], warmup_iter=2)  # 4 stages
MAX_ITERS, BATCH = 8, 1


def _record_hook():
    """A hook recording each iteration's input shape and LR (the largest of the param groups: SpyNet's is lower)."""
    from mmengine.hooks import Hook

    class Record(Hook):
        priority = 'LOWEST'

        def __init__(self):
            self.seen = {}

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            shapes = {tuple(x.shape) for x in data_batch['inputs']}  # pseudo_collate: one tensor per sample
            assert len(shapes) == 1, shapes
            lr = max(group['lr'] for group in runner.optim_wrapper.optimizer.param_groups)
            self.seen[runner.iter + 1] = (shapes.pop(), lr)

    return Record()


def _config(work_dir, repo_root, offline_data, workers=0, persistent=False, **multigrid):
    from mmengine.config import Config

    cfg = Config.fromfile(str(repo_root / CONFIG))
    cfg.work_dir = str(work_dir)
    cfg.custom_hooks = [dict(type='MultigridHook', **dict(cfg.multigrid, **MULTIGRID, **multigrid))]
    cfg.param_scheduler = dict(type='MultigridLR', by_epoch=False)
    cfg.train_dataloader.update(num_workers=workers, persistent_workers=persistent, batch_size=BATCH)
    cfg.train_dataloader.dataset.data_root = str(offline_data / 'video_sr')
    cfg.train_dataloader.dataset.num_input_frames = 3
    cfg.train_cfg.update(max_iters=MAX_ITERS, val_interval=1000)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint.update(interval=3, max_keep_ckpts=5)
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(seed=0)
    return cfg


def _train(cfg):
    from mmengine.runner import Runner

    runner = Runner.from_cfg(cfg)
    record = _record_hook()
    runner.register_hook(record)
    runner.train()
    return runner, record.seen


def _expected(iterations, begin=0, baseline=(16, 3)):
    """(input shape, LR) the schedule gives each iteration (the config's base LR 5e-4)."""
    from multigrid_plugin.lr_schedule import multigrid_lr
    from multigrid_plugin.schedule import MultigridSchedule

    schedule = MultigridSchedule(MULTIGRID['spatial_sizes'], MULTIGRID['temporal_sizes'], MAX_ITERS - begin)
    expected = {}
    for i in iterations:
        if i <= begin:
            continue
        _, patch, frames = schedule(i - begin)
        expected[i] = ((frames, 3, patch, patch), multigrid_lr(schedule, i - begin, 5e-4, warmup_iter=2))
    return expected


@pytest.mark.slow
@pytest.mark.parametrize('persistent', [False, True], ids=['workers', 'persistent-workers'])
def test_every_iteration_has_its_stage_shape_and_lr(tmp_path, repo_root, offline_data, persistent):
    runner, seen = _train(_config(tmp_path, repo_root, offline_data, workers=2, persistent=persistent))
    assert runner.iter == MAX_ITERS
    assert set(seen) == set(range(1, MAX_ITERS + 1))
    for i, (shape, lr) in _expected(range(1, MAX_ITERS + 1)).items():
        assert seen[i][0] == shape, i
        assert seen[i][1] == pytest.approx(lr, rel=1e-6), i
    assert {seen[i][0] for i in seen} == {(f, 3, p, p) for p in (16, 32) for f in (2, 3)}  # all four stages ran
    hub = runner.message_hub.log_scalars
    assert hub['train/multigrid_patch'].current() == 32 and hub['train/multigrid_frames'].current() == 3
    assert (tmp_path / 'multigrid_schedule.png').stat().st_size > 0
    logged = ''.join(p.read_text() for p in tmp_path.rglob('*.log'))
    assert 'trains stage 4/4: LR patch 32, 3 frames' in logged


@pytest.mark.slow
def test_resume_mid_stage_equals_the_uninterrupted_run(tmp_path, repo_root, offline_data):
    _, full = _train(_config(tmp_path / 'full', repo_root, offline_data))
    cfg = _config(tmp_path / 'resumed', repo_root, offline_data)
    cfg.resume, cfg.load_from = True, str(tmp_path / 'full' / 'iter_3.pth')  # stage 2 is iterations 3-4
    runner, resumed = _train(cfg)
    assert runner.iter == MAX_ITERS and set(resumed) == set(range(4, MAX_ITERS + 1))
    for i in resumed:
        assert resumed[i][0] == full[i][0], i
        assert resumed[i][1] == pytest.approx(full[i][1], rel=1e-6), i


@pytest.fixture(scope='module')
def mmagic_checkpoint(tmp_path_factory):
    """An MMagic BasicVSR checkpoint for SSLPruningVSR's ``pretrained``."""
    import effsr_core.mmagic  # noqa: F401
    from mmagic.models.editors.basicvsr.basicvsr_net import BasicVSRNet

    torch.manual_seed(0)
    net = BasicVSRNet(mid_channels=8, num_blocks=1)
    path = tmp_path_factory.mktemp('pretrained') / 'basicvsr_mmagic.pth'
    torch.save({'meta': {}, 'state_dict': {f'generator.{k}': v for k, v in net.state_dict().items()}}, path)
    return path


@pytest.mark.slow
def test_ssl_fine_tuning_with_multigrid(tmp_path, repo_root, offline_data, mmagic_checkpoint):
    """SSL regularises on the configured shapes (iterations 1-4), prunes at 5; multigrid runs the fine-tuning."""
    from mmengine.config import Config

    begin = 4
    cfg = Config.fromfile(str(repo_root / SSL_CONFIG))
    cfg.work_dir = str(tmp_path)
    cfg.model.generator.update(num_feat=8, num_block=1, pretrained=str(mmagic_checkpoint))
    cfg.model.pruning.regularization = dict(delta=0.05, tau=0.1, t1=1, t2=2)  # prune at iteration 5
    values = dict(MULTIGRID, warmup_iter=0)
    cfg.custom_hooks.append(dict(type='MultigridHook', begin=begin, **values))
    cfg.param_scheduler = dict(type='MultigridLR', by_epoch=False)  # rebuilt at pruning, bound again by the hook
    cfg.train_dataloader.update(num_workers=0, batch_size=BATCH)
    cfg.train_dataloader.dataset.update(data_root=str(offline_data / 'video_sr'), num_input_frames=3)
    cfg.train_pipeline[4].gt_patch_size = 64
    cfg.train_dataloader.dataset.pipeline = cfg.train_pipeline
    cfg.train_cfg.update(max_iters=MAX_ITERS, val_interval=1000)
    cfg.optim_wrapper.paramwise_cfg = dict(custom_keys={'spynet': dict(lr_mult=0.125)})  # largest LR: the base LR
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    runner, seen = _train(cfg)
    assert runner.model.generator.plan is not None  # pruned
    for i in range(1, begin + 1):
        assert seen[i] == ((3, 3, 16, 16), 2e-4)  # the configured shape and the held LR while regularising
    from multigrid_plugin.lr_schedule import multigrid_lr
    from multigrid_plugin.schedule import MultigridSchedule

    schedule = MultigridSchedule(values['spatial_sizes'], values['temporal_sizes'], MAX_ITERS - begin)
    for i in range(begin + 1, MAX_ITERS + 1):
        _, patch, frames = schedule(i - begin)
        assert seen[i][0] == (frames, 3, patch, patch), i
        assert seen[i][1] == pytest.approx(multigrid_lr(schedule, i - begin, 2e-4), rel=1e-6), i


# ------------------------------------------------------------------------------------------------ refusals
def test_bad_hook_argument_is_refused_at_construction():
    import effsr_core.mmagic  # noqa: F401
    from mmagic.registry import HOOKS

    from effsr_core.options import OptionError

    with pytest.raises(OptionError, match='MultigridHook.spatial_sizes'):
        HOOKS.build(dict(type='MultigridHook', spatial_sizes=[32, 16]))
    with pytest.raises(OptionError, match="MultigridHook: unknown key.*spatial_size"):
        HOOKS.build(dict(type='MultigridHook', spatial_size=[16, 32]))
    with pytest.raises(OptionError, match='MultigridHook.begin'):
        HOOKS.build(dict(type='MultigridHook', begin=-1))


def _edvr(cfg):
    cfg.model = dict(type='EDVR', generator=dict(
        type='EDVRNet', in_channels=3, out_channels=3, mid_channels=8, num_frames=3, deform_groups=1,
        num_blocks_extraction=1, num_blocks_reconstruction=1, center_frame_idx=1, with_tsa=False),
        pixel_loss=dict(type='CharbonnierLoss', loss_weight=1.0, reduction='sum'),
        data_preprocessor=dict(type='DataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.]))


def _hook(**changes):
    def change(cfg):
        cfg.custom_hooks[0].update(changes)
    return change


def _configured_patch(size):
    def change(cfg):
        crop, = (t for t in cfg.train_dataloader.dataset.pipeline if t['type'] == 'PairedRandomCrop')
        crop['gt_patch_size'] = size
    return change


REFUSALS = {
    'stage patch x scale larger than the frames': (_hook(spatial_sizes=[16, 128]),
                                                   r'MultigridHook.spatial_sizes \(128 x scale 4\): 512 is larger'),
    'more frames than a clip': (_hook(temporal_sizes=[2, 101]), 'MultigridHook.temporal_sizes: 101 frames'),
    'stage_iters not adding up to max_iters': (_hook(stage_iters=[2, 2, 2, 3]),
                                               r'MultigridHook.stage_iters: \[2, 2, 2, 3\] adds up to 9'),
    'begin leaving no iteration': (_hook(begin=MAX_ITERS), r'train_cfg.max_iters: 8 training iterations leave none'),
    'eta_min above the lowest LR (SpyNet\'s)': (_hook(eta_min=1e-4), r'MultigridHook.eta_min: 0.0001 exceeds'),
    'temporal cycle on a fixed-frame model (EDVR)': (_edvr, 'MultigridHook.mode'),
    'hook without MultigridLR': (lambda cfg: setattr(cfg, 'param_scheduler', dict(
        type='CosineRestartLR', by_epoch=False, periods=[MAX_ITERS], restart_weights=[1], eta_min=0.)),
        "param_scheduler: MultigridHook needs dict\\(type='MultigridLR', by_epoch=False\\)"),
    'the settings written twice (MultigridLR too)': (lambda cfg: cfg.param_scheduler.update(temporal_sizes=[2, 3]),
                                                    'param_scheduler.temporal_sizes: MultigridLR reads the multigrid '
                                                    'settings of MultigridHook; write the multigrid dict once'),
    'the length written again': (lambda cfg: cfg.param_scheduler.update(total_iter=MAX_ITERS),
                                 'param_scheduler.total_iter: MultigridLR reads the multigrid settings'),
    'a configured patch larger than the frames (the central config check)': (
        _configured_patch(1024), r'train_dataloader.dataset.pipeline\[\d\].gt_patch_size: 1024 is larger'),
    'a second LR scheduler': (lambda cfg: setattr(cfg, 'param_scheduler', [
        cfg.param_scheduler, dict(type='LinearLR', by_epoch=False, start_factor=0.1, end=2)]),
        'param_scheduler: LinearLR also sets the LR'),
}


@pytest.mark.parametrize('change,message', REFUSALS.values(), ids=REFUSALS)
def test_config_that_cannot_work_is_refused_before_the_first_iteration(tmp_path, repo_root, offline_data, change,
                                                                       message):
    from mmengine.runner import Runner

    from effsr_core.options import OptionError

    cfg = _config(tmp_path, repo_root, offline_data)
    change(cfg)
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    with pytest.raises(OptionError, match=message):
        runner.train()
    assert runner.iter == 0
    assert not list(Path(tmp_path).rglob('*.pth')) and not (tmp_path / 'multigrid_schedule.png').exists()


def test_the_hook_and_the_scheduler_read_one_settings_object(tmp_path, repo_root, offline_data):
    """The config writes the multigrid dict once (to the hook); MultigridLR is bound to the hook's settings before
    the first iteration and starts at its LR."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    from multigrid_plugin.lr_schedule import multigrid_lr
    from multigrid_plugin.schedule import MultigridSchedule

    class Stop(Exception):
        pass

    seen = []

    class Inspect(Hook):
        priority = 'LOWEST'

        def before_train(self, runner):
            hook, = (h for h in runner.hooks if type(h).__name__ == 'MultigridHook')
            scheduler, = runner.param_schedulers
            lr = max(group['lr'] for group in runner.optim_wrapper.optimizer.param_groups)
            seen.append((hook.settings, scheduler.scheduler, lr))
            raise Stop

    cfg = _config(tmp_path, repo_root, offline_data)
    assert 'spatial_sizes' not in cfg.param_scheduler and cfg.custom_hooks[0]['spatial_sizes'] == [16, 32]
    runner = Runner.from_cfg(cfg)
    runner.register_hook(Inspect())
    with pytest.raises(Stop):
        runner.train()
    settings, scheduler, lr = seen[0]
    assert scheduler.settings is settings and scheduler.schedule is settings.schedule
    assert settings.schedule == MultigridSchedule((16, 32), (2, 3), MAX_ITERS) and settings.warmup_iter == 2
    assert lr == pytest.approx(multigrid_lr(settings.schedule, 1, 5e-4, warmup_iter=2), rel=1e-12)
    assert (tmp_path / 'multigrid_schedule.png').stat().st_size > 0


def test_multigrid_lr_without_the_hook_is_refused():
    """Built by mmengine with no settings, MultigridLR refuses multigrid keys and steps only once a hook bound it."""
    import effsr_core.mmagic  # noqa: F401
    from mmagic.registry import PARAM_SCHEDULERS
    from mmengine.optim import OptimWrapper

    from effsr_core.options import OptionError

    def build(**options):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        return PARAM_SCHEDULERS.build(dict(type='MultigridLR', by_epoch=False, **options),
                                      default_args=dict(optimizer=OptimWrapper(optimizer)))

    with pytest.raises(OptionError, match=r"param_scheduler.warmup_iter: MultigridLR reads .* of MultigridHook"):
        build(warmup_iter=5)
    scheduler = build()
    assert not scheduler.bound
    with pytest.raises(RuntimeError, match='no MultigridHook bound it'):
        scheduler.step()


def test_the_plugins_hooks_share_one_config_check_per_runner(monkeypatch):
    """MultigridHook and SSLPruningHook extend the central ConfigCheckHook: a runner's config is checked once,
    however many of them it lists."""
    import effsr_core.mmagic  # noqa: F401
    from mmagic.registry import HOOKS

    from effsr_core.mmagic import check_hook

    checked = []
    monkeypatch.setattr(check_hook, 'check_mmagic_config', checked.append)

    class Runner:  # what before_run reads when the runner does not train: no optimizer wrapper built
        def __init__(self, name):
            self.cfg, self.optim_wrapper = {'name': name}, None

    hooks = [HOOKS.build(dict(type=name)) for name in ('SSLPruningHook', 'MultigridHook', 'ConfigCheckHook')]
    assert all(isinstance(hook, check_hook.ConfigCheckHook) for hook in hooks)
    first, second = Runner('first'), Runner('second')
    for hook in hooks:
        hook.before_run(first)
    hooks[1].before_run(second)
    assert checked == [{'name': 'first'}, {'name': 'second'}]


def test_mirrored_septuplets_train_on_their_central_frames(tmp_path):
    """MMagic's Vimeo-90K pipeline: 7 listed frames per sequence, mirrored to 14 (MirrorSequence). A 6-frame stage
    reads the central 3 frames, mirrored."""
    import cv2
    import numpy as np
    from mmagic.registry import DATASETS
    from mmengine.registry import init_default_scope

    import effsr_core.mmagic  # noqa: F401
    from multigrid_plugin.mmagic.data import frames_dataset_baseline, reshape_frames_dataset

    init_default_scope('mmagic')

    names = [f'im{i}.png' for i in range(1, 8)]
    for kind, size in (('GT', 32), ('BIx4', 8)):
        folder = tmp_path / kind / '00001' / '0001'
        folder.mkdir(parents=True)
        for index, name in enumerate(names, 1):
            cv2.imwrite(str(folder / name), np.full((size, size, 3), index * 10, np.uint8))
    (tmp_path / 'meta_info.txt').write_text('00001/0001 7 (32,32,3)\n')
    dataset = DATASETS.build(dict(
        type='BasicFramesDataset', data_root=str(tmp_path), data_prefix=dict(img='BIx4', gt='GT'),
        ann_file='meta_info.txt', depth=2, num_input_frames=7, fixed_seq_len=7,
        load_frames_list=dict(img=names, gt=names), metainfo=dict(dataset_type='vimeo90k_seq', task_name='vsr'),
        pipeline=[dict(type='LoadImageFromFile', key='img', channel_order='rgb'),
                  dict(type='LoadImageFromFile', key='gt', channel_order='rgb'),
                  dict(type='SetValues', dictionary=dict(scale=4)), dict(type='PairedRandomCrop', gt_patch_size=32),
                  dict(type='MirrorSequence', keys=['img', 'gt']), dict(type='PackInputs')]))
    assert frames_dataset_baseline(dataset) == (4, 8, 14)  # the trained clip: 7 frames mirrored
    with reshape_frames_dataset(dataset, 4, 6, scale=4):
        sample = dataset[0]
    frames = sample['inputs']
    assert frames.shape == (6, 3, 4, 4) and sample['data_samples'].gt_img.shape == (6, 3, 16, 16)
    assert [int(v) for v in frames[:, 0, 0, 0]] == [30, 40, 50, 50, 40, 30]  # im3-im5, then reversed
    assert dataset[0]['inputs'].shape == (14, 3, 8, 8)  # outside the context: as configured
