"""SSL through BasicSR's own train/test pipelines (``python -m effsr_core.train/test``), on the offline clips."""
import subprocess
import sys

import pytest
import torch
import yaml

from ssl_plugin.pruning.plan import PruningPlan, decode_state

pytestmark = pytest.mark.slow

DEMO_OPTIONS = 'options/basicsr/ssl/demo_SSL_BasicVSR_tiny_offline.yml'
NUM_FEAT, NUM_BLOCK = 8, 1


@pytest.fixture(scope='module')
def basicsr_checkpoint(tmp_path_factory):
    """A checkpoint of BasicSR's own BasicVSR, the starting point of a lab's pruning run."""
    from basicsr.archs.basicvsr_arch import BasicVSR

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('pretrained') / 'net_g_basicvsr.pth'
    torch.save({'params': BasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK).state_dict()}, path)
    return path


def _options(workdir, repo_root, tiny_video_val, pretrained, method='ssl', total_iter=8, **pruning):
    with open(repo_root / DEMO_OPTIONS) as f:
        opt = yaml.safe_load(f)
    opt['name'] = f'test_{method}'
    for phase in ('train', 'val'):
        for key in ('dataroot_gt', 'dataroot_lq', 'meta_info_file'):
            opt['datasets'][phase][key] = str(repo_root / opt['datasets'][phase][key])
    opt['datasets']['val'].update(tiny_video_val)
    opt['datasets']['train'].update(num_frame=3, gt_size=64, batch_size_per_gpu=1, num_worker_per_gpu=0)
    opt['network_g'].update(num_feat=NUM_FEAT, num_block=NUM_BLOCK)
    opt['path']['pretrain_network_g'] = str(pretrained)
    opt['pruning'] = {'method': method, 'ratio': 0.5,
                      'regularization': {'delta': 0.05, 'tau': 0.1, 't1': 1, 't2': 2}, **pruning}
    opt['train']['total_iter'] = total_iter
    opt['train']['scheduler']['periods'] = [total_iter]
    if method == 'assl':
        opt['train'].pop('tf_opt')
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2, use_tb_logger=True)
    opt['val']['val_freq'] = 1000
    path = workdir / f'{opt["name"]}.yml'
    path.write_text(yaml.safe_dump(opt))
    return path, opt


def _run(module, options, workdir, *extra):
    result = subprocess.run([sys.executable, '-m', module, '-opt', str(options), *extra], cwd=workdir,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def _plan_of(checkpoint_path):
    state = torch.load(checkpoint_path, map_location='cpu', weights_only=True)['params']
    extra = decode_state(state['_extra_state'])
    return (None if extra['plan'] is None else PruningPlan.from_dict(extra['plan']),
            None if extra['pending_plan'] is None else PruningPlan.from_dict(extra['pending_plan']))


def test_whole_pipeline_resume_and_test_from_the_final_checkpoint(tmp_path, repo_root, tiny_video_val,
                                                                  basicsr_checkpoint):
    options, opt = _options(tmp_path, repo_root, tiny_video_val, basicsr_checkpoint)
    log = _run('effsr_core.train', options, tmp_path)
    root = tmp_path / 'experiments' / opt['name']
    assert 'selected for pruning' in log and 'pruned: keep 0.500' in log
    assert 'l_sir' in log and 'l_tf' in log and 'gamma_pruned' in log
    assert 'Validation REDS4' in log
    for name in ('pruning_factors.csv', 'pruning_factors.png', 'models/pruning_start.pth', 'models/net_g_latest.pth'):
        assert (root / name).is_file(), name
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / 'tb_logger' / opt['name']))
    events.Reload()
    curves = {tag: [e.value for e in events.Scalars(tag)] for tag in ('gamma_pruned', 'gamma_kept')}
    assert len(curves['gamma_pruned']) == 4  # one point per regularisation iteration (print_freq 1)
    assert curves['gamma_pruned'][-1] < curves['gamma_pruned'][0] and curves['gamma_kept'][-1] > 0.9
    # regularisation (iterations 1-4) leaves a dense network carrying the selection; pruning happens at iteration 5
    plan_2, pending_2 = _plan_of(root / 'models/net_g_2.pth')
    plan_6, pending_6 = _plan_of(root / 'models/net_g_6.pth')
    assert plan_2 is None and pending_2 is not None
    assert plan_6 == pending_2 and pending_6 is None
    assert _plan_of(root / 'models/net_g_latest.pth')[0] == plan_6

    # resume from a regularisation-phase state and from a fine-tuning-phase state
    for state in ('2.state', '6.state'):
        log = _run('effsr_core.train', options, tmp_path, '--force_yml',
                   f'path:resume_state={root / "training_states" / state}')
        assert f'Resuming training from epoch: 0, iter: {state.split(".")[0]}' in log
        assert _plan_of(root / 'models/net_g_latest.pth')[0] == plan_6

    # test with BasicSR's own VideoRecurrentModel and test pipeline, from the final checkpoint alone
    test_opt = {'name': 'test_pruned', 'model_type': 'VideoRecurrentModel', 'scale': 4, 'num_gpu': 0,
                'manual_seed': 0, 'datasets': {'test_1': {**opt['datasets']['val']}},
                'network_g': {'type': 'SSLBasicVSR', 'num_feat': NUM_FEAT, 'num_block': NUM_BLOCK},
                'path': {'pretrain_network_g': str(root / 'models/net_g_latest.pth'), 'strict_load_g': True},
                'val': {'save_img': False, 'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0,
                                                                'test_y_channel': False}}}}
    test_options = tmp_path / 'test.yml'
    test_options.write_text(yaml.safe_dump(test_opt))
    log = _run('effsr_core.test', test_options, tmp_path)
    assert '# psnr:' in log


def test_auto_resume_after_a_kill_while_saving_resumes_the_previous_state(tmp_path, repo_root, tiny_video_val,
                                                                          basicsr_checkpoint):
    """A run killed while writing its newest state (truncated, as older versions left it) resumes from the one
    before, and the saves of the run leave no temporary files."""
    options, opt = _options(tmp_path, repo_root, tiny_video_val, basicsr_checkpoint, total_iter=6)
    _run('effsr_core.train', options, tmp_path)
    root = tmp_path / 'experiments' / opt['name']
    assert not [p for p in root.rglob('*.tmp')]
    latest = root / 'training_states' / '6.state'
    latest.write_bytes(latest.read_bytes()[:100])
    log = _run('effsr_core.train', options, tmp_path, '--auto_resume')
    assert f'skipping {latest}' in log and 'Resuming training from epoch: 0, iter: 4' in log
    resumed_log = max(root.glob('train_*.log'), key=lambda path: path.stat().st_mtime)
    assert f'auto_resume: skipping {latest}' in resumed_log.read_text()  # the experiment's log says so too
    assert torch.load(latest, weights_only=True)['iter'] == 6  # written again by the resumed run


@pytest.mark.parametrize('method,pruning', [('l1_norm', {}), ('assl', {}), ('ssl', {'round_to': 4})])
def test_baselines_and_rounding_run_in_the_same_framework(tmp_path, repo_root, tiny_video_val, basicsr_checkpoint,
                                                          method, pruning):
    total = 2 if method == 'l1_norm' else 6
    options, opt = _options(tmp_path, repo_root, tiny_video_val, basicsr_checkpoint, method=method,
                            total_iter=total, **pruning)
    _run('effsr_core.train', options, tmp_path)
    plan, _ = _plan_of(tmp_path / 'experiments' / opt['name'] / 'models/net_g_latest.pth')
    assert plan.method == method
    from ssl_plugin.archs import SSLBasicVSR
    from ssl_plugin.pruning.config import PruningConfig
    from ssl_plugin.pruning.pruner import StructuredPruner

    sizes = StructuredPruner(PruningConfig(method=method)).groups(
        SSLBasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK, upsample_feat=opt['network_g'].get('upsample_feat', 64)))
    assert set(plan.kept) <= set(sizes)
    if method in ('l1_norm', 'assl'):  # per layer: every group of the method's units loses half of its units
        assert {name: len(plan.kept_indices(name, size)) for name, size in sizes.items()} == {
            name: size - size // 2 for name, size in sizes.items()}
    if method == 'assl':
        assert {name.split('.')[-1] for name in plan.kept} == {'hidden', 'mid', 'upconv1', 'upconv2', 'conv_hr'}
    if pruning.get('round_to'):
        assert plan.kept and all(len(idx) % 4 == 0 for idx in plan.kept.values())
        assert 0.35 <= plan.kept_fraction(sizes) <= 0.65  # ratio 0.5, each count rounded to a multiple of 4


@pytest.mark.parametrize('change,message', [
    ({'pruning': {'ratio': 1.2}}, 'pruning.ratio'),
    ({'pruning': {'ratoi': 0.5}}, 'pruning: unknown key'),
    ({'train': {'total_iter': 3}}, 'train.total_iter'),
    ({'network_g': {'type': 'SSLBasicVSRR'}}, "network_g.type: 'SSLBasicVSRR'.*Did you mean 'SSLBasicVSR'"),
    ({'datasets': {'train': {'gt_size': 66}}}, 'datasets.train.gt_size: 66 is not divisible by scale 4'),
    ({'datasets': {'train': {'dataroot_gt': 'no/such/folder'}}}, 'datasets.train.dataroot_gt'),
    ({'train': {'tf_opt': {'type': 'TemporalFinetuneLos'}}}, 'train.tf_opt.type'),
])
def test_bad_options_fail_early_naming_the_option(tmp_path, repo_root, tiny_video_val, basicsr_checkpoint, change,
                                                  message):
    from effsr_core.basicsr import register_all
    from effsr_core.basicsr.options_check import check_basicsr_options
    from effsr_core.options import OptionError

    register_all()
    _, opt = _options(tmp_path, repo_root, tiny_video_val, basicsr_checkpoint)
    for section, values in change.items():
        target = opt[section]
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                target[key].update(value)
            else:
                target[key] = value
    with pytest.raises(OptionError, match=message):
        check_basicsr_options(opt)


def test_distributed_ranks_prune_identically(tmp_path, repo_root, tiny_video_val, basicsr_checkpoint):
    """Two CPU processes through BasicSR's own launcher (torchrun, --launcher pytorch, gloo)."""
    import os
    import socket

    options, opt = _options(tmp_path, repo_root, tiny_video_val, basicsr_checkpoint, total_iter=6,
                            selection='random', seed=3)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    torchrun = os.path.join(os.path.dirname(sys.executable), 'torchrun')
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    result = subprocess.run([torchrun, '--nproc_per_node=2', f'--master_port={port}', '-m', 'effsr_core.train',
                             '-opt', str(options), '--launcher', 'pytorch'], cwd=tmp_path, capture_output=True,
                            text=True, timeout=900, env=env)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert 'pruned: keep' in log and 'Validation REDS4' in log
    plan, _ = _plan_of(tmp_path / 'experiments' / opt['name'] / 'models/net_g_latest.pth')
    assert plan is not None and plan.extra['selection'] == 'random'
