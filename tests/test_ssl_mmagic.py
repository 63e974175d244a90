"""SSL through MMagic's runner (model SSLPruningVSR + SSLPruningHook), with resume in both phases."""
import pytest
import torch

pytestmark = pytest.mark.slow

CONFIG = 'options/mmagic/ssl/ssl_basicvsr_tiny_offline.py'
NUM_FEAT, NUM_BLOCK = 8, 1


@pytest.fixture(scope='module')
def mmagic_checkpoint(tmp_path_factory):
    """An MMagic BasicVSR (BasicVSRNet generator) checkpoint, as `mim train` writes it."""
    import effsr_core.mmagic  # noqa: F401
    from mmagic.models.editors.basicvsr.basicvsr_net import BasicVSRNet

    torch.manual_seed(0)
    net = BasicVSRNet(mid_channels=NUM_FEAT, num_blocks=NUM_BLOCK)
    path = tmp_path_factory.mktemp('pretrained') / 'basicvsr_mmagic.pth'
    torch.save({'meta': {}, 'state_dict': {f'generator.{k}': v for k, v in net.state_dict().items()}}, path)
    return path


def _config(workdir, repo_root, offline_data, pretrained, max_iters, resume=False):
    from mmengine.config import Config

    cfg = Config.fromfile(str(repo_root / CONFIG))
    cfg.work_dir = str(workdir)
    cfg.model.generator.update(num_feat=NUM_FEAT, num_block=NUM_BLOCK, pretrained=str(pretrained))
    cfg.model.pruning.regularization = dict(delta=0.05, tau=0.1, t1=1, t2=2)  # prune at iteration 5
    cfg.train_dataloader.dataset.data_root = str(offline_data / 'video_sr')
    cfg.train_dataloader.dataset.num_input_frames = 3
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.batch_size = 1
    cfg.train_pipeline[4].gt_patch_size = 64
    cfg.train_dataloader.dataset.pipeline = cfg.train_pipeline
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = 1000
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.param_scheduler.periods = [max_iters - 4]  # the fine-tuning iterations after the 4 regularising ones
    cfg.default_hooks.checkpoint.update(interval=2, max_keep_ckpts=10)
    cfg.default_hooks.logger.interval = 1
    cfg.resume = resume
    return cfg


class _Killed(Exception):
    pass


def _train(cfg, killed_after=None):
    """Train; with ``killed_after`` the run stops there as a killed process would (after that iteration's
    checkpoint was written)."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    class KillAfter(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if runner.iter + 1 == killed_after:
                raise _Killed

    runner = Runner.from_cfg(cfg)
    if killed_after is not None:
        runner.register_hook(KillAfter(), priority='LOWEST')
    try:
        runner.train()
    except _Killed:
        pass
    return runner


def _plan(path):
    from ssl_plugin.pruning.plan import decode_state

    state = torch.load(path, map_location='cpu', weights_only=False)['state_dict']
    return decode_state(state['generator._extra_state'])


def test_pipeline_and_resume_in_both_phases(tmp_path, repo_root, offline_data, mmagic_checkpoint):
    import shutil

    full = tmp_path / 'uninterrupted'
    runner = _train(_config(full, repo_root, offline_data, mmagic_checkpoint, max_iters=8))
    dense_state = torch.load(full / 'iter_4.pth', weights_only=False)['state_dict']
    dense_params = sum(value.numel() for key, value in dense_state.items()
                       if key.startswith('generator.') and value.is_floating_point())
    assert _plan(full / 'iter_4.pth')['plan'] is None  # still regularising at iteration 4
    uninterrupted_plan = runner.model.generator.plan.to_dict()

    # a run killed after iteration 4 (regularisation phase) resumes from its checkpoint
    for name in ('iter_4.pth', 'pruning_start.pth', 'pruning_factors.csv'):  # what the killed run left
        shutil.copy(full / name, tmp_path / name)
    cfg = _config(tmp_path, repo_root, offline_data, mmagic_checkpoint, max_iters=8, resume=True)
    cfg.load_from = str(tmp_path / 'iter_4.pth')
    runner = _train(cfg, killed_after=6)  # killed again, now in the fine-tuning phase
    generator = runner.model.generator
    assert (tmp_path / 'iter_6.pth').is_file() and generator.plan is not None  # killed after iteration 6
    assert sum(p.numel() for p in generator.parameters()) < dense_params
    assert generator.plan.to_dict() == uninterrupted_plan
    optimised = {id(p) for group in runner.optim_wrapper.optimizer.param_groups for p in group['params']}
    assert optimised == {id(p) for p in runner.model.parameters()}  # the optimizer follows the compact network
    assert runner.param_schedulers and 'train/loss_tf' in runner.message_hub.log_scalars
    assert 'train/loss_sir' not in runner.message_hub.log_scalars
    plan = _plan(tmp_path / 'iter_6.pth')['plan']
    assert plan is not None and plan['method'] == 'ssl'
    for name in ('pruning_start.pth', 'pruning_factors.csv', 'pruning_factors.png'):
        assert (tmp_path / name).is_file()
    logged = ''.join(p.read_text() for p in tmp_path.rglob('vis_data/scalars.json'))  # both runs
    assert '"gamma_pruned"' in logged and '"loss_sir"' in logged and '"loss_tf"' in logged
    assert list(tmp_path.glob('*/vis_data/events.out.tfevents.*'))  # TensorBoard of the resumed run

    runner = _train(_config(tmp_path, repo_root, offline_data, mmagic_checkpoint, max_iters=8, resume=True))
    assert runner.iter == 8 and runner.model.generator.plan.to_dict() == plan
    assert runner.param_schedulers


def test_mmagic_test_loop_from_the_final_checkpoint_alone(tmp_path, repo_root, offline_data, mmagic_checkpoint,
                                                          tiny_video_val):
    """MMagic's own BasicVSR model and test loop, a dense generator config, and a pruned checkpoint."""
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    _train(_config(tmp_path, repo_root, offline_data, mmagic_checkpoint, max_iters=6))
    cfg = Config.fromfile(str(repo_root / 'options/mmagic/demo/basicvsr_tiny_offline.py'))
    cfg.work_dir = str(tmp_path / 'test')
    cfg.model.generator.update(num_feat=NUM_FEAT, num_block=NUM_BLOCK)
    cfg.load_from = str(tmp_path / 'iter_6.pth')
    root = tiny_video_val['dataroot_gt'].rsplit('/', 1)[0]
    cfg.test_dataloader.dataset.update(data_root=root, data_prefix=dict(img='lq', gt='gt'), ann_file='meta_info.txt',
                                       num_input_frames=8, fixed_seq_len=8)
    runner = Runner.from_cfg(cfg)

    class CaptureMetrics(Hook):  # MMagic's MultiTestLoop hands its metrics to the hooks only
        def after_test_epoch(self, runner, metrics=None):
            self.metrics = metrics

    capture = CaptureMetrics()
    runner.register_hook(capture)
    runner.test()
    metrics = capture.metrics
    assert runner.model.generator.plan is not None  # rebuilt from the checkpoint's plan
    assert metrics['PSNR'] > 15 and 0 < metrics['SSIM'] <= 1


def test_model_without_hook_or_with_fix_iter_is_refused(tmp_path, repo_root, offline_data, mmagic_checkpoint):
    cfg = _config(tmp_path, repo_root, offline_data, mmagic_checkpoint, max_iters=1)
    cfg.custom_hooks = []
    with pytest.raises(RuntimeError, match='SSLPruningHook'):
        _train(cfg)
    cfg = _config(tmp_path / 'b', repo_root, offline_data, mmagic_checkpoint, max_iters=1)
    cfg.model.train_cfg = dict(fix_iter=10)
    with pytest.raises(ValueError, match='fix_iter'):
        _train(cfg)
    cfg = _config(tmp_path / 'c', repo_root, offline_data, mmagic_checkpoint, max_iters=1)
    cfg.model.pruning.ratoi = 0.3
    with pytest.raises(ValueError, match='ratoi'):
        _train(cfg)
