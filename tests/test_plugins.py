"""Plugin discovery through the ``effsr.plugins`` entry-point group, and the one-line use from a lab's own scripts.

A third-party plugin is installed into a temporary folder (a package plus its ``.dist-info`` with the entry point,
which is what pip writes) and put on ``PYTHONPATH`` of a fresh interpreter.
"""
import os
import subprocess
import sys
import textwrap

import pytest
import yaml

pytestmark = pytest.mark.slow  # every test here starts a fresh interpreter

LAB_PLUGIN = {
    'lab_plugin/__init__.py': '''
        import torch
        from torch import nn

        from effsr_core.registry import register


        @register('arch', example={'kwargs': {}, 'input': (1, 3, 8, 8)})
        class LabUpsampler(nn.Module):
            def __init__(self, scale: int = 2):
                super().__init__()
                self.conv = nn.Conv2d(3, 3 * scale * scale, 3, 1, 1)
                self.shuffle = nn.PixelShuffle(scale)

            def forward(self, x):
                return self.shuffle(self.conv(x))


        @register('loss', example={'kwargs': {}, 'inputs': lambda: (torch.rand(2, 3), torch.rand(2, 3))})
        class LabL1Loss(nn.Module):
            def forward(self, pred, target):
                return (pred - target).abs().mean()


        @register('lr_scheduler', example={'kwargs': {'gamma': 0.5}})
        class LabHalvingLR(torch.optim.lr_scheduler.LambdaLR):
            def __init__(self, optimizer, gamma=0.5, last_epoch=-1):
                self.gamma = gamma
                super().__init__(optimizer, lambda step: gamma ** step, last_epoch)
    ''',
    'lab_plugin/basicsr/__init__.py': '''
        from basicsr.models.sr_model import SRModel
        from basicsr.utils.registry import MODEL_REGISTRY

        from effsr_core.basicsr.schedulers import RegisteredSchedulers


        @MODEL_REGISTRY.register()
        class LabSRModel(RegisteredSchedulers, SRModel):
            pass
    ''',
    'lab_plugin/mmagic/__init__.py': '''
        from mmengine.hooks import Hook

        from mmagic.registry import HOOKS


        @HOOKS.register_module()
        class LabHook(Hook):
            pass
    ''',
    'lab_plugin-0.1.dist-info/METADATA': 'Metadata-Version: 2.1\nName: lab-plugin\nVersion: 0.1\n',
    'lab_plugin-0.1.dist-info/entry_points.txt': '[effsr.plugins]\nlab = lab_plugin\n',
}


def _install(root, files):
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def _python(code, cwd, pythonpath=None, timeout=600):
    env = dict(os.environ)
    if pythonpath:
        env['PYTHONPATH'] = os.pathsep.join([str(pythonpath), env.get('PYTHONPATH', '')])
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_a_third_party_plugin_reaches_every_registry_of_both_toolboxes(tmp_path):
    site = _install(tmp_path / 'site', LAB_PLUGIN)
    result = _python('''
        import torch
        import effsr_core.basicsr, effsr_core.mmagic
        from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY
        from mmagic.registry import HOOKS, MODELS, PARAM_SCHEDULERS
        from effsr_core.plugins import declared_plugins
        import lab_plugin

        assert {'lab', 'ssl'} <= {entry.name for entry in declared_plugins()}
        assert ARCH_REGISTRY.get('LabUpsampler') is lab_plugin.LabUpsampler is MODELS.get('LabUpsampler')
        assert LOSS_REGISTRY.get('LabL1Loss') is lab_plugin.LabL1Loss is MODELS.get('LabL1Loss')
        assert MODEL_REGISTRY.get('LabSRModel') and HOOKS.get('LabHook')
        assert MODELS.get('SSLBasicVSR') and HOOKS.get('SSLPruningHook')  # our own plugins too
        # the scheduler, wrapped for mmengine, as mmengine's runner builds it
        from mmengine.optim import OptimWrapper
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        scheduler = PARAM_SCHEDULERS.build(dict(type='LabHalvingLR', by_epoch=False, gamma=0.5),
                                           default_args=dict(optimizer=OptimWrapper(optimizer), epoch_length=1))
        scheduler.step(); scheduler.step()
        assert optimizer.param_groups[0]['lr'] == 0.25 and scheduler.state_dict()['last_step'] == 2
        try:
            PARAM_SCHEDULERS.build(dict(type='LabHalvingLR'), default_args=dict(optimizer=OptimWrapper(optimizer)))
        except ValueError as error:
            assert 'by_epoch=False' in str(error)
        else:
            raise AssertionError('an epoch-based use was accepted')
        # a BasicSR model of the plugin finds the registered scheduler by name
        from effsr_core.basicsr.options_check import check_basicsr_options
        from effsr_core.basicsr.schedulers import supported_schedulers
        assert 'LabHalvingLR' in supported_schedulers(MODEL_REGISTRY.get('LabSRModel'))
        assert 'LabHalvingLR' not in supported_schedulers(MODEL_REGISTRY.get('SRModel'))
        print('OK')
    ''', tmp_path, pythonpath=site)
    assert result.returncode == 0 and 'OK' in result.stdout, result.stderr[-3000:]


def test_a_plugin_that_fails_to_import_is_named(tmp_path):
    broken = dict(LAB_PLUGIN)
    broken['lab_plugin/__init__.py'] = 'import no_such_module_here\n'
    site = _install(tmp_path / 'site', broken)
    result = _python('import effsr_core.basicsr', tmp_path, pythonpath=site)
    assert result.returncode != 0
    assert ("plugin 'lab' (entry point effsr.plugins: lab_plugin) failed to import: ModuleNotFoundError: "
            "No module named 'no_such_module_here'") in result.stderr


@pytest.mark.parametrize('name,messages', [
    ('EDSR', ["BasicSR already has a component named 'EDSR' (basicsr.archs.edsr_arch.EDSR)",
              'rename the plugin arch lab_plugin.LabUpsampler']),  # a toolbox's own name: both named
    ('LabNet', ["lab_plugin.LabUpsampler is registered as 'LabNet'; BasicSR registers classes under their own "
                'names']),  # BasicSR files a class under its own name only
])
def test_a_component_name_basicsr_cannot_take_is_refused(tmp_path, name, messages):
    plugin = dict(LAB_PLUGIN)
    plugin['lab_plugin/__init__.py'] = textwrap.dedent(LAB_PLUGIN['lab_plugin/__init__.py']).replace(
        "@register('arch', example", f"@register('arch', name={name!r}, example")
    site = _install(tmp_path / 'site', plugin)
    result = _python('import effsr_core.basicsr', tmp_path, pythonpath=site)
    assert result.returncode != 0
    for message in messages:
        assert message in result.stderr


def test_a_lab_basicsr_train_script_gets_every_plugin_with_one_import(tmp_path, repo_root, offline_data):
    """The Real-ESRGAN / HAT pattern: the lab's own train.py calls BasicSR's train_pipeline."""
    (tmp_path / 'train.py').write_text(textwrap.dedent('''
        import os.path as osp

        import effsr_core.basicsr  # noqa: F401  (the one line: every plugin registered in BasicSR)
        from basicsr.train import train_pipeline

        if __name__ == '__main__':
            train_pipeline(osp.abspath(osp.dirname(__file__)))
    '''))
    with open(repo_root / 'options/basicsr/ntire/train_RFDN_x4_offline.yml') as f:
        opt = yaml.safe_load(f)
    for key in ('dataroot_gt', 'dataroot_lq'):
        for phase in opt['datasets'].values():
            phase[key] = str(repo_root / phase[key])
    opt['train']['total_iter'] = 2
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)
    opt.pop('val', None)
    opt['datasets'].pop('val', None)
    (tmp_path / 'rfdn.yml').write_text(yaml.safe_dump(opt))
    result = subprocess.run([sys.executable, 'train.py', '-opt', 'rfdn.yml'], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / 'experiments' / opt['name'] / 'models' / 'net_g_2.pth').is_file()


def test_an_mmagic_users_train_script_gets_every_plugin_with_one_import(tmp_path, repo_root, offline_data):
    """MMagic's tools/train.py pattern, with a config that has no custom_imports."""
    config = tmp_path / 'demo' / 'cfg.py'
    config.parent.mkdir()
    config.write_text((repo_root / 'options/mmagic/demo/basicvsr_tiny_offline.py').read_text())
    base = repo_root / 'options/mmagic/_base_/offline_reds_tiny.py'
    (tmp_path / '_base_').mkdir()
    (tmp_path / '_base_' / base.name).write_text(base.read_text().replace('custom_imports', '_no_custom_imports'))
    data_root = offline_data / 'video_sr'
    (tmp_path / 'train.py').write_text(textwrap.dedent(f'''
        import effsr_core.mmagic  # noqa: F401  (the one line: every plugin registered in MMagic)
        from mmengine.config import Config
        from mmengine.runner import Runner

        cfg = Config.fromfile('demo/cfg.py')
        assert 'custom_imports' not in cfg
        cfg.work_dir = 'work'
        cfg.train_cfg.max_iters = 2
        cfg.train_cfg.val_interval = 1000
        cfg.default_hooks.checkpoint.interval = 2
        cfg.train_dataloader.dataset.data_root = {str(data_root)!r}
        cfg.train_dataloader.num_workers = 0
        cfg.train_dataloader.dataset.num_input_frames = 2
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
        Runner.from_cfg(cfg).train()
    '''))
    result = subprocess.run([sys.executable, 'train.py'], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / 'work' / 'iter_2.pth').is_file()
