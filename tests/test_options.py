"""Every shipped config: up to date with its generator, valid for its toolbox, and its model builds."""
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
BASICSR_OPTIONS = sorted((REPO_ROOT / 'options/basicsr').rglob('*.yml'))
MMAGIC_CONFIGS = sorted(p for p in (REPO_ROOT / 'options/mmagic').rglob('*.py') if '_base_' not in p.parts)


@pytest.mark.parametrize('generator_name', ['make_ssl_options', 'make_memsr_options'])
def test_generated_configs_are_up_to_date(generator_name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(generator_name, REPO_ROOT / f'scripts/{generator_name}.py')
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    stale = [str(path.relative_to(REPO_ROOT)) for path, text in generator.render_all().items()
             if not path.is_file() or path.read_text() != text]
    assert not stale, f'run scripts/{generator_name}.py: {stale[:5]}'


@pytest.mark.parametrize('path', BASICSR_OPTIONS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_basicsr_options_are_valid(path):
    from effsr_core.basicsr import register_all
    from effsr_core.basicsr.options_check import check_basicsr_options

    from effsr_core.options import OptionError

    register_all()
    opt = yaml.safe_load(path.read_text())
    is_train = 'test' not in path.name
    check_basicsr_options(opt, is_train=is_train, check_paths=False)
    opt['network_g']['type'] += 'Typo'  # the check reads this file's sections: a broken copy is refused
    with pytest.raises(OptionError, match='network_g.type'):
        check_basicsr_options(opt, is_train=is_train, check_paths=False)


@pytest.mark.parametrize('path', MMAGIC_CONFIGS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_mmagic_configs_load_and_build(path):
    import effsr_core.mmagic  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmagic.registry import MODELS

    cfg = Config.fromfile(str(path))
    assert cfg.custom_imports['imports'] == ['effsr_core.mmagic']
    init_default_scope('mmagic')
    model_cfg = cfg.model
    model_cfg.generator.pop('pretrained', None)  # a user's checkpoint
    if model_cfg.type == 'MemSRDistillEditor':  # needs a user's initialisation file and teacher checkpoint
        from effsr_core.options import OptionError

        assert type(MODELS.build(model_cfg.generator)).__name__ == 'PlainConvSR'
        with pytest.raises(OptionError, match='model.distill.init_file'):
            MODELS.build(model_cfg)
        return
    if model_cfg.generator.type == 'EDSRPixelShuffle':  # a MemSR teacher: MMagic's EDSR config, the paper's net
        assert type(MODELS.build(model_cfg).generator).__name__ == 'EDSRPixelShuffle'
        return
    no_download = 'spynet_pretrained' if model_cfg.generator.type == 'BasicVSRNet' else 'spynet_path'
    model_cfg.generator[no_download] = None
    model = MODELS.build(model_cfg)
    if 'multigrid' in path.parts:  # MMagic's own generators; the settings are written once, in the hook
        hook, = (hook for hook in cfg.custom_hooks if hook['type'] == 'MultigridHook')
        assert cfg.param_scheduler == dict(type='MultigridLR', by_epoch=False)  # it reads the hook's settings
        assert {k: v for k, v in hook.items() if k not in ('type', 'begin')} == dict(cfg.multigrid)
        return
    assert type(model.generator).__name__ == 'SSLBasicVSR'
    if model_cfg.type == 'SSLPruningVSR':
        assert any(hook['type'] == 'SSLPruningHook' for hook in cfg.custom_hooks)
