"""Bad input fails before any work starts, with one line naming the option, and writes nothing.

One broken option per case, in both toolboxes: BasicSR through ``effsr_core.train`` (its options check runs before
BasicSR's pipeline, which the test replaces by a failure so an accepted case cannot start training) and MMagic
through the construction of the model and hook from the shipped config (and the runner for ``max_iters``).
"""
import copy
from pathlib import Path

import pytest
import torch
import yaml
from bad_options import DROP, changed, refused_train

SSL_OPTIONS = 'options/basicsr/ssl/demo_SSL_BasicVSR_tiny_offline.yml'
SSL_CONFIG = 'options/mmagic/ssl/ssl_basicvsr_tiny_offline.py'


@pytest.fixture(scope='module')
def ssl_options(repo_root, offline_data, tmp_path_factory) -> dict:
    """The main job's SSL options, with paths into the offline data; they pass the check as they are."""
    with open(repo_root / SSL_OPTIONS) as f:
        opt = yaml.safe_load(f)
    for phase in ('train', 'val'):
        for key in ('dataroot_gt', 'dataroot_lq', 'meta_info_file'):
            opt['datasets'][phase][key] = str(repo_root / opt['datasets'][phase][key])
    import torch

    from ssl_plugin.archs import SSLBasicVSR

    pretrained = tmp_path_factory.mktemp('pretrained') / 'net_g.pth'
    network = {key: value for key, value in opt['network_g'].items() if key != 'type'}
    torch.save({'params': SSLBasicVSR(**network).state_dict()}, pretrained)  # read and fitted before the run
    opt['path']['pretrain_network_g'] = str(pretrained)
    return opt


class _RunsCode:
    def __reduce__(self):
        return print, ('unpickling ran code',)


@pytest.fixture(scope='module')
def unsafe_checkpoint(tmp_path_factory) -> str:
    import torch

    path = tmp_path_factory.mktemp('unsafe') / 'net_g.pth'
    torch.save({'params': {'weight': _RunsCode()}}, path)
    return str(path)


def test_an_unsafe_checkpoint_is_refused_naming_the_option(monkeypatch, tmp_path, ssl_options, unsafe_checkpoint,
                                                           capsys):
    error = refused_train(monkeypatch, tmp_path, changed(ssl_options, {'path.pretrain_network_g': unsafe_checkpoint}))
    assert error.startswith('error in ') and f'path.pretrain_network_g: {unsafe_checkpoint}' in error, error
    assert 'unpickling ran code' not in capsys.readouterr().out


def test_the_base_options_are_accepted(monkeypatch, tmp_path, ssl_options):
    """The cases below differ from accepted options by their one change only."""
    with pytest.raises(AssertionError, match='accepted'):
        refused_train(monkeypatch, tmp_path, ssl_options)


BASICSR_CASES = {
    'misspelt plugin section': ({'pruning': DROP, 'prunning': {'ratio': 0.3}},
                                "prunning: unknown top-level key.*Did you mean 'pruning'"),
    'section under another name': ({'pruning': DROP, 'ssl': {'ratio': 0.3}}, 'ssl: unknown top-level key'),
    'section its model does not read': ({'model_type': 'VideoRecurrentModel', 'network_g.type': 'BasicVSR'},
                                        'pruning: this section is read by model_type SSLPruningModel'),
    'round_to not allowed': ({'pruning.round_to': 7}, 'pruning.round_to: 7 is not allowed'),
    'round_to of the wrong type': ({'pruning.round_to': 'abc'}, "pruning.round_to: 'abc' has type str"),
    'ratio out of range': ({'pruning.ratio': 1.2}, 'pruning.ratio: 1.2 is out of range'),
    'unknown pruning key': ({'pruning.ratoi': 0.5}, "pruning: unknown key.*ratoi.*Did you mean 'ratio'"),
    'unknown method': ({'pruning.method': 'magnitude'}, "pruning.method: 'magnitude'"),
    'units not a list': ({'pruning.units': 'in'}, 'pruning.units'),
    'number written as text': ({'pruning.regularization.delta': '1e-4'}, 'pruning.regularization.delta.*1.0e-4'),
    'delta above tau': ({'pruning.regularization.delta': 0.5}, 'pruning.regularization.delta: 0.5 exceeds'),
    'bool of the wrong type': ({'pruning.freeze_flow': 'yes'}, 'pruning.freeze_flow'),
    'misspelt train key': ({'train.factor_lr_mull': 100}, "train: unknown key.*Did you mean 'factor_lr_mul'"),
    'too few iterations to prune': ({'train.total_iter': 3}, 'train.total_iter'),
    'total_iter as text': ({'train.total_iter': '1e5'}, "train.total_iter: '1e5'"),
    'fix_flow with pruning': ({'train.fix_flow': 5}, 'train.fix_flow'),
    'unknown loss': ({'train.tf_opt.type': 'TemporalFinetuneLos'}, 'train.tf_opt.type'),
    'loss argument not allowed': ({'train.tf_opt.norm': 'l4'}, "train.tf_opt.norm: 'l4' is not one of"),
    'misspelt loss argument': ({'train.tf_opt.loss_wieght': 1.0},
                               "train.tf_opt: unknown key.*loss_wieght.*Did you mean 'loss_weight'"),
    'misspelt network argument': ({'network_g.num_feats': 8}, "network_g: unknown key.*num_feats.*'num_feat'"),
    'warm-up as long as the training': ({'train.warmup_iter': 60}, 'train.warmup_iter: 60 is not below'),
    'checkpoint of another width': ({'network_g.num_feat': 8},
                                    r"path.pretrain_network_g: .*net_g.pth does not fit SSLBasicVSR: '.*' has shape "
                                    r'\[16.*\] in the checkpoint but \[8.*\] in the network'),
    'unknown scheduler': ({'train.scheduler.type': 'CosineLR'}, 'train.scheduler.type'),
    'more frames than a clip': ({'datasets.train.num_frame': 101}, 'datasets.train.num_frame: 101'),
    'frames x interval beyond a clip': ({'datasets.train.interval_list': [40]}, 'datasets.train.num_frame'),
    'patch larger than the frames': ({'datasets.train.gt_size': 512}, 'datasets.train.gt_size: 512 is larger'),
    'patch not divisible by scale': ({'datasets.train.gt_size': 66}, 'datasets.train.gt_size: 66 is not divisible'),
    'scale not that of the LR folder': ({'scale': 2}, 'scale: 2 does not fit datasets.train'),
    'missing data folder': ({'datasets.train.dataroot_gt': 'no/such/folder'}, 'datasets.train.dataroot_gt'),
    'unknown dataset type': ({'datasets.train.type': 'REDSDatasetRecurrent'}, 'datasets.train.type'),
    'video test set name BasicSR refuses': ({'datasets.val.name': 'MyClips'}, "datasets.val.name: 'MyClips'"),
    'validation clip not in the data': ({'datasets.val.clips': ['999']}, 'datasets.val.clips: 999'),
    'clip names read as numbers': ({'datasets.val.clips': [0]}, 'datasets.val.clips: 0 has type int'),
    'max_frames out of range': ({'datasets.val.max_frames': 0}, 'datasets.val.max_frames'),
    'misspelt metric': ({'val.metrics.psnr.type': 'calculate_psnrr'}, 'val.metrics.psnr.type'),
    'misspelt metric argument': ({'val.metrics.psnr.test_y_chanel': True},
                                 "val.metrics.psnr: unknown key.*Did you mean 'test_y_channel'"),
    'unknown architecture': ({'network_g.type': 'SSLBasicVSRR'}, 'network_g.type'),
    'unknown model type': ({'model_type': 'SSLPruningModle'}, 'model_type'),
    'missing pretrained file': ({'path.pretrain_network_g': 'no/such.pth'}, 'path.pretrain_network_g'),
}


@pytest.mark.parametrize('changes,message', BASICSR_CASES.values(), ids=BASICSR_CASES)
def test_basicsr_bad_option_is_refused_before_anything_is_written(monkeypatch, tmp_path, ssl_options,
                                                                  changes, message):
    import re

    error = refused_train(monkeypatch, tmp_path, changed(ssl_options, changes))
    assert re.search(message, error), error


LATENCY = {'lr_size': [16, 16], 'frames': 2}
LATENCY_CASES = {
    'ratio with a latency target': ({'pruning.latency': {'speedup': 2.0}},
                                    'pruning.ratio: 0.5 given together with pruning.latency'),
    'target out of reach': ({'pruning.ratio': DROP, 'pruning.latency': LATENCY | {'speedup': 1000.0}},
                            r'pruning.latency.speedup: 1000x is out of reach on eager-channels_last at LR 16x16: '
                            r'pruning every prunable unit gives at most [\d.]+x'),
    'backend without its device': ({'pruning.ratio': DROP,
                                    'pruning.latency': LATENCY | {'speedup': 2.0, 'backend': 'cuda-eager-nchw'}},
                                   r'pruning.latency.backend: .*needs a CUDA GPU'),
}


@pytest.mark.skipif(torch.cuda.is_available(), reason='one case checks the refusal of a CUDA backend without a GPU')
@pytest.mark.parametrize('changes,message', LATENCY_CASES.values(), ids=LATENCY_CASES)
def test_basicsr_bad_latency_target_is_refused_before_anything_is_written(monkeypatch, tmp_path, ssl_options,
                                                                          changes, message):
    import re

    monkeypatch.setenv('EFFSR_CACHE_DIR', str(tmp_path / 'cache'))  # the measured table is a cache, kept apart
    error = refused_train(monkeypatch, tmp_path, changed(ssl_options, changes))
    assert re.search(message, error), error


COMMAND_LINE_CASES = {
    'force_yml parent misspelt': (['--force_yml', 'trian:total_iter=3'], "--force_yml: trian.*Did you mean 'train'"),
    'force_yml key misspelt': (['--force_yml', 'train:total_itr=3'], '--force_yml: train:total_itr is not in'),
    'force_yml without a value': (['--force_yml', 'train:total_iter'], '--force_yml'),
    'force_yml with a bad value': (['--force_yml', 'pruning:round_to=7'], 'pruning.round_to: 7'),
}


@pytest.mark.parametrize('extra,message', COMMAND_LINE_CASES.values(), ids=COMMAND_LINE_CASES)
def test_basicsr_bad_command_line_is_refused(monkeypatch, tmp_path, ssl_options, extra, message):
    import re

    error = refused_train(monkeypatch, tmp_path, ssl_options, *extra)
    assert re.search(message, error), error


def test_unknown_command_line_flag_is_refused(monkeypatch, tmp_path, ssl_options, capsys):
    assert refused_train(monkeypatch, tmp_path, ssl_options, '--auto-resume') == '2'  # argparse's usage error
    assert 'unrecognized arguments: --auto-resume' in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------------ MMagic
@pytest.fixture(scope='module')
def ssl_config(repo_root):
    import effsr_core.mmagic  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    init_default_scope('mmagic')
    cfg = Config.fromfile(str(repo_root / SSL_CONFIG))
    cfg.model.generator.pretrained = None
    return cfg


MMAGIC_MODEL_CASES = {
    'round_to not allowed': ({'pruning.round_to': 7}, 'model.pruning.round_to: 7'),
    'misspelt model argument': ({'pruning': DROP, 'prunning': {'ratio': 0.3}},
                                "model: unknown key.*prunning.*Did you mean 'pruning'"),
    'unknown pruning key': ({'pruning.ratoi': 0.5}, 'model.pruning: unknown key'),
    'ratio out of range': ({'pruning.ratio': -0.1}, 'model.pruning.ratio'),
    'number written as text': ({'pruning.regularization.t1': 0}, 'model.pruning.regularization.t1'),
    'tf_loss not a config': ({'tf_loss': 'TemporalFinetuneLoss'}, 'model.tf_loss'),
    'fix_iter with pruning': ({'train_cfg': {'fix_iter': 5}}, 'model.train_cfg.fix_iter'),
}


@pytest.mark.parametrize('changes,message', MMAGIC_MODEL_CASES.values(), ids=MMAGIC_MODEL_CASES)
def test_mmagic_bad_model_argument_is_refused_at_construction(ssl_config, changes, message):
    from mmagic.registry import MODELS

    from effsr_core.options import OptionError

    with pytest.raises(OptionError, match=message):
        MODELS.build(changed(ssl_config.model.to_dict(), changes))


def test_mmagic_bad_hook_argument_is_refused_at_construction(ssl_config):
    from mmagic.registry import HOOKS

    from effsr_core.options import OptionError

    with pytest.raises(OptionError, match='SSLPruningHook.curve_interval: 0 is out of range'):
        HOOKS.build(dict(type='SSLPruningHook', curve_interval=0))


def _runner_config(ssl_config, work_dir, offline_data):
    cfg = copy.deepcopy(ssl_config)
    cfg.work_dir = str(work_dir)
    for loader in ('train_dataloader', 'val_dataloader'):
        cfg[loader].dataset.data_root = str(offline_data / 'video_sr')
        cfg[loader].num_workers = 0
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    return cfg


def _refused_by_the_runner(cfg, message: str) -> None:
    """The runner stops before the first iteration with ``message``, and no checkpoint is written."""
    from mmengine.runner import Runner

    from effsr_core.options import OptionError

    runner = Runner.from_cfg(cfg)
    with pytest.raises(OptionError, match=message):
        runner.train()
    assert runner.iter == 0
    assert not list(Path(cfg.work_dir).rglob('*.pth')) and not list(Path(cfg.work_dir).rglob('pruning_factors.*'))


MMAGIC_DATA_CASES = {
    'more frames than a clip': ({'train_dataloader.dataset.num_input_frames': 101},
                                'train_dataloader.dataset.num_input_frames: 101 frames'),
    'patch larger than the frames': ({'train_pipeline.4.gt_patch_size': 512},
                                     r'train_dataloader.dataset.pipeline\[4\].gt_patch_size: 512 is larger'),
    'scale not that of the LR folder': ({'train_pipeline.3.dictionary': {'scale': 2}},
                                        'scale: 2 does not fit train_dataloader.dataset'),
    'missing GT folder': ({'train_dataloader.dataset.data_prefix.gt': 'train_sharpp'},
                          'train_dataloader.dataset.data_prefix.gt'),
}


@pytest.mark.parametrize('changes,message', MMAGIC_DATA_CASES.values(), ids=MMAGIC_DATA_CASES)
def test_mmagic_data_that_cannot_work_is_refused_before_the_first_iteration(ssl_config, tmp_path, offline_data,
                                                                            changes, message):
    cfg = _runner_config(ssl_config, tmp_path, offline_data)
    for dotted, value in changes.items():
        *parents, last = dotted.split('.')
        target = cfg
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[int(last) if last.isdigit() else last] = value
    cfg.train_dataloader.dataset.pipeline = cfg.train_pipeline
    _refused_by_the_runner(cfg, message)


def test_mmagic_max_iters_shorter_than_regularisation_stops_before_the_first_iteration(ssl_config, tmp_path,
                                                                                       offline_data):
    cfg = _runner_config(ssl_config, tmp_path, offline_data)
    cfg.train_cfg.max_iters = 50  # the config regularises for 60 iterations
    _refused_by_the_runner(cfg, r'train_cfg.max_iters \(50\) must exceed')


def test_mmagic_max_iters_changed_without_the_finetuning_periods_is_refused(ssl_config, tmp_path, offline_data):
    cfg = _runner_config(ssl_config, tmp_path, offline_data)
    cfg.train_cfg.max_iters = 100  # 60 regularising + 40 fine-tuning, the cosine still spans 60
    _refused_by_the_runner(cfg, r'param_scheduler.periods: \[60\] add up to 60, but the schedule runs the 40 '
                                'fine-tuning iterations')


# ------------------------------------------------------------------------------- a lab's own BasicSR train.py
LAB_TRAIN_SCRIPT = '''"""A lab's BasicSR-style train.py (the Real-ESRGAN / HAT pattern) with the one documented import line."""
import os.path as osp

import effsr_core.basicsr  # noqa: F401
from basicsr.train import train_pipeline

if __name__ == '__main__':
    train_pipeline(osp.abspath(osp.join(__file__, osp.pardir)))
'''


@pytest.mark.slow
@pytest.mark.parametrize('changes, message', [
    ({'pruning.ratoi': 0.5}, "pruning: unknown key.*ratoi.*Did you mean 'ratio'"),
    ({'train.total_iter': 3}, 'train.total_iter'),
], ids=['misspelt pruning key', 'too few iterations to prune'])
def test_a_labs_own_train_script_refuses_before_anything_is_written(tmp_path, ssl_options, changes, message):
    """Through BasicSR's own ``train_pipeline`` (no effsr_core entry point), with an experiment of the same name
    already there: the last line names the option, and BasicSR neither renames nor creates a folder."""
    import re
    import subprocess
    import sys

    lab = tmp_path / 'lab'
    lab.mkdir()
    (lab / 'train.py').write_text(LAB_TRAIN_SCRIPT)
    options = lab / 'bad.yml'
    options.write_text(yaml.safe_dump(changed(ssl_options, changes)))
    previous = lab / 'experiments' / ssl_options['name']
    previous.mkdir(parents=True)
    before = sorted(path.relative_to(lab) for path in lab.rglob('*'))
    result = subprocess.run([sys.executable, str(lab / 'train.py'), '-opt', str(options)], cwd=lab,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f'error in {options}: ') and re.search(message, last), result.stderr[-2000:]
    assert sorted(path.relative_to(lab) for path in lab.rglob('*')) == before  # nothing archived, nothing made


# ------------------------------------------------------------------ MMagic's own tools/train.py and `mim train`
def _mmagic_train(command: str, config: Path, work_dir: Path, *options: str):
    """``mim train mmagic`` or MMagic's installed ``tools/train.py`` on ``config``, from the repository root."""
    import os
    import subprocess
    import sys

    import mmagic

    if command == 'mim':
        program = [os.path.join(os.path.dirname(sys.executable), 'mim'), 'train', 'mmagic']
    else:
        program = [sys.executable, str(Path(mmagic.__file__).parent / '.mim' / 'tools' / 'train.py')]
    return subprocess.run([*program, str(config), '--work-dir', str(work_dir), '--cfg-options',
                           'model.generator.pretrained=None', *options],
                          cwd=config.parents[3], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize('command, options, message', [
    ('mim', ['model.pruning.ratoi=0.3'], "model.pruning: unknown key.*ratoi.*Did you mean 'ratio'"),
    ('mim', ['train_cfg.max_iters=50'], r'train_cfg.max_iters \(50\) must exceed'),
    ('tools', ['train_dataloader.dataset.num_input_frames=101'],
     'train_dataloader.dataset.num_input_frames: 101 frames'),
], ids=['mim: misspelt key, refused while the runner is built', 'mim: max_iters, refused before the first iteration',
        'tools/train.py: a clip too long, refused by the config check'])
def test_mmagic_refusals_end_in_one_line_and_leave_no_work_dir(repo_root, offline_data, tmp_path, command,
                                                                options, message):
    import re

    config = repo_root / SSL_CONFIG
    work_dir = tmp_path / 'work_dirs' / 'refused'
    result = _mmagic_train(command, config, work_dir, *options)
    from effsr_core.mmagic.refusals import REFUSED_EXIT

    assert result.returncode == REFUSED_EXIT, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f'error in {config}: ') and re.search(message, last), last
    assert 'Traceback' not in result.stderr and 'CalledProcessError' not in result.stderr
    assert list(tmp_path.iterdir()) == []  # not even the parents of the work_dir


@pytest.mark.slow
def test_an_unsafe_load_from_ends_in_one_line_naming_the_option(repo_root, offline_data, tmp_path, unsafe_checkpoint):
    result = _mmagic_train('tools', repo_root / SSL_CONFIG, tmp_path / 'work', f'load_from={unsafe_checkpoint}')
    last = result.stderr.strip().splitlines()[-1]
    assert f': load_from: {unsafe_checkpoint}' in last and 'unpickling ran code' not in result.stdout, last
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_refused_run_keeps_what_its_work_dir_held(repo_root, offline_data, tmp_path):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    (work_dir / 'iter_10.pth').write_bytes(b'an earlier run')
    result = _mmagic_train('tools', repo_root / SSL_CONFIG, work_dir, 'train_cfg.max_iters=50')
    assert 'must exceed' in result.stderr.strip().splitlines()[-1]
    assert [path.name for path in work_dir.iterdir()] == ['iter_10.pth']  # the new log folder is gone, nothing else


@pytest.mark.parametrize('prefix', ['multigrid', 'MultigridHook'])
def test_a_multigrid_warmup_longer_than_the_schedule_is_refused(prefix):
    """Both toolboxes resolve the section here (a BasicSR ``multigrid`` section, MMagic's ``MultigridHook``)."""
    from effsr_core.options import OptionError
    from multigrid_plugin.options import MULTIGRID, resolve

    values = MULTIGRID.check({'warmup_iter': 30, 'spatial_sizes': [32, 48], 'temporal_sizes': [3, 5]})
    with pytest.raises(OptionError, match=f'{prefix}.warmup_iter: 30 is not below the 24 iterations'):
        resolve(values, total_iter=24, prefix=prefix)
    assert resolve(values, total_iter=31, prefix=prefix).warmup_iter == 30
