"""Environment fixes: each one works where it is needed and does nothing where it is not."""
import importlib
import os
import subprocess
import sys
import types
from collections import Counter

import numpy as np
import pytest
import torch

from effsr_core import compat
from effsr_core.compat import Fix, _FixFinder, fixes


# ------------------------------------------------------------------------------------------- the import hook
@pytest.fixture
def probe_package(tmp_path, monkeypatch):
    """A package ``effsr_probe`` with one real module ``present``; ``absent`` does not exist."""
    package = tmp_path / 'effsr_probe'
    package.mkdir()
    (package / '__init__.py').write_text('')
    (package / 'present.py').write_text('VALUE = "real"\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in [n for n in sys.modules if n.startswith('effsr_probe')]:
        del sys.modules[name]


def _with_finder(monkeypatch, *probe_fixes):
    finder = _FixFinder(probe_fixes)
    monkeypatch.setattr(sys, 'meta_path', [finder, *sys.meta_path])
    return finder


def test_substitute_only_when_the_real_module_is_missing(probe_package, monkeypatch):
    make = lambda name: types.SimpleNamespace(VALUE='substitute')  # noqa: E731
    _with_finder(monkeypatch, Fix('p1', 'effsr_probe.present', 'substitute', substitute=make),
                 Fix('p2', 'effsr_probe.absent', 'substitute', substitute=make))
    assert importlib.import_module('effsr_probe.present').VALUE == 'real'
    assert importlib.import_module('effsr_probe.absent').VALUE == 'substitute'


def test_around_and_after_fixes_wrap_the_real_module(probe_package, monkeypatch):
    calls = []
    _with_finder(monkeypatch, Fix('a', 'effsr_probe.present', 'around',
                                  before=lambda: calls.append('before') or 'token',
                                  after=lambda token: calls.append(f'after {token}')))
    module = importlib.import_module('effsr_probe.present')
    assert module.VALUE == 'real' and calls == ['before', 'after token']
    assert module.__spec__.loader.get_filename('effsr_probe.present').endswith('present.py')  # inspect still works


def test_several_fixes_of_one_module_all_run_in_order(probe_package, monkeypatch):
    calls = []
    record = lambda label: lambda module: calls.append((label, module.VALUE))  # noqa: E731
    _with_finder(monkeypatch, Fix('first', 'effsr_probe.present', 'after', after=record('1')),
                 Fix('second', 'effsr_probe.present', 'after', after=record('2')))
    importlib.import_module('effsr_probe.present')
    assert calls == [('1', 'real'), ('2', 'real')]


def test_install_is_idempotent():
    compat.install()
    compat.install()
    assert sum(isinstance(f, _FixFinder) for f in sys.meta_path) == 1


# ------------------------------------------------------------------------------------------- torchvision
def test_torchvision_imports_and_fakes_are_only_skipped_for_missing_ops():
    import torchvision  # noqa: F401  (would raise 'operator torchvision::nms does not exist' without the fix)

    library = torch.library.Library('torchvision', 'FRAGMENT')
    library.define('effsr_probe(Tensor x) -> Tensor')
    token = fixes.tolerate_missing_torchvision_ops()
    try:
        registered = []
        decorator = torch.library.register_fake('torchvision::effsr_probe')  # exists: the real registration runs
        decorator(lambda x: registered.append(1) or torch.empty_like(x))
        skipped = torch.library.register_fake('torchvision::effsr_missing')  # absent: a pass-through decorator
        assert skipped(len) is len
    finally:
        assert fixes.restore_register_fake(token) is True  # something was skipped
    assert torch.library.register_fake is token[0]
    with torch._subclasses.fake_tensor.FakeTensorMode():
        torch.ops.torchvision.effsr_probe(torch.empty(2))
    assert registered == [1]
    token = fixes.tolerate_missing_torchvision_ops()
    assert fixes.restore_register_fake(token) is False  # nothing skipped: nothing changed


def test_deform_conv2d_is_defined_only_where_torchvision_ops_are_missing(monkeypatch):
    """The numerics are in tests/test_torchvision_ops.py; here: when the fix acts, and that it acts once."""
    import torchvision.extension
    import torchvision.ops.deform_conv as deform_module

    from effsr_core.compat.fixes import torchvision_ops

    has_ops = torchvision.extension._has_ops()
    assert ('torchvision_deform_conv' in compat.applied_fixes()) is not has_ops
    assert (deform_module._assert_has_ops is torchvision_ops._assert_deform_conv2d) is not has_ops
    assert hasattr(torch.ops.torchvision, 'deform_conv2d')  # torchvision's own operator, or this project's
    assert hasattr(torch.ops.torchvision, 'nms') is has_ops  # the other ops are not stood in for
    assert fixes.for_torch.cpu_deform_conv2d(deform_module) is False  # already done (or not needed): no change
    untouched = types.SimpleNamespace(_assert_has_ops=torchvision.extension._assert_has_ops)
    monkeypatch.setattr(torchvision.extension, '_has_ops', lambda: True)  # a torchvision whose C++ ops load
    assert fixes.for_torch.cpu_deform_conv2d(untouched) is False
    assert untouched._assert_has_ops is torchvision.extension._assert_has_ops


def test_functional_tensor_alias():
    module = importlib.import_module('torchvision.transforms.functional_tensor')
    assert module is importlib.import_module('torchvision.transforms._functional_tensor')
    import basicsr.data.degradations  # noqa: F401  (the import that needed it)


# ------------------------------------------------------------------------------------------- mmcv / numpy / mmengine
def test_mmcv_ext_is_the_real_ops_or_a_stub_that_fails_clearly_when_called():
    import inspect

    ext = importlib.import_module('mmcv._ext')
    assert inspect.getmodule(ext) is ext
    if getattr(ext, '__file__', None):  # full mmcv (EFFSR_FULL_MMCV=1): the compiled ops, the stub stays out
        assert ext.__file__.endswith('.so') and 'effsr_core stub' not in (ext.__doc__ or '')
    else:  # mmcv-lite
        with pytest.raises(NotImplementedError, match='EFFSR_FULL_MMCV=1'):
            ext.deform_conv_forward(1, 2)
    import mmagic.models  # noqa: F401  (imports mmcv.ops at module level)


def test_numpy_bool8(monkeypatch):
    monkeypatch.delattr(np, 'bool8', raising=False)
    assert fixes.numpy_bool8() is True and np.bool8 is np.bool_
    assert fixes.numpy_bool8() is False  # present: untouched


def test_mmengine_loads_its_own_training_state(tmp_path):
    from mmengine.logging import HistoryBuffer
    from mmengine.runner import checkpoint

    path = tmp_path / 'iter_1.pth'
    torch.save({'state_dict': {'w': torch.ones(1)}, 'message_hub': {'buf': HistoryBuffer()}}, path)
    with pytest.raises(Exception, match='weights_only'):
        torch.load(path)
    assert isinstance(checkpoint.CheckpointLoader.load_checkpoint(str(path))['message_hub']['buf'], HistoryBuffer)
    assert fixes.mmengine_safe_load(checkpoint) is False  # already applied


# ------------------------------------------------------------------------------------------- BasicSR
def test_basicsr_resume_state_on_cpu(tmp_path):
    import basicsr.train

    states = tmp_path / 'training_states'
    states.mkdir()
    torch.save({'iter': 7, 'epoch': 0, 'schedulers': [{'milestones': Counter({5: 1})}]}, states / '7.state')
    torch.save({'iter': 3, 'epoch': 0}, states / '3.state')
    opt = {'auto_resume': True, 'name': 'x', 'path': {'training_states': str(states), 'models': str(tmp_path)}}
    state = basicsr.train.load_resume_state(opt)
    assert state['iter'] == 7 and opt['path']['resume_state'].endswith('7.state')
    assert isinstance(state['schedulers'][0]['milestones'], Counter)


def test_basicsr_fixes_do_nothing_where_cuda_works(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    original = object()
    module = types.SimpleNamespace(_init_dist_pytorch=original,
                                   BaseModel=type('BaseModel', (), {'model_to_device': original}))
    assert fixes.basicsr_cpu_distributed_init(module) is False and module._init_dist_pytorch is original
    assert fixes.basicsr_cpu_model_to_device(module) is False and module.BaseModel.model_to_device is original


def test_video_validation_runs_on_cpu_and_leaves_cuda_models_alone(tiny_video_val):
    from basicsr.data.video_test_dataset import VideoRecurrentTestDataset
    from basicsr.models import video_recurrent_model

    dataset = VideoRecurrentTestDataset({'name': 'REDS4', 'io_backend': {'type': 'disk'}, 'cache_data': True,
                                         'num_frame': -1, **tiny_video_val})
    loader = types.SimpleNamespace(dataset=dataset)
    model = object.__new__(video_recurrent_model.VideoRecurrentModel)
    torch.manual_seed(0)
    from ssl_plugin.archs import SSLBasicVSR
    model.__dict__.update(device=torch.device('cpu'), net_g=SSLBasicVSR(num_feat=4, num_block=1),
                          opt={'val': {'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0}}},
                               'is_train': True, 'dist': False, 'rank': 0})
    logged = []
    model._log_validation_metric_values = lambda it, name, tb: logged.append(model.metric_results['000'].clone())
    model.dist_validation(loader, 1, None, False)
    assert logged and logged[0].shape == (8, 1) and (logged[0] > 0).all()  # PSNR of all 8 frames
    assert dataset[0]['lq'].dim() == 4  # the cached clip was not squeezed in place

    model.device = torch.device('cuda')
    model.opt = None  # the original method would fail on it at once: proves it is the one that runs
    with pytest.raises(TypeError):
        model.dist_validation(loader, 1, None, False)


# ------------------------------------------------------------------------------------------- start-up hook
@pytest.mark.slow
def test_startup_hook_covers_programs_that_import_mmagic_first():
    """`mim train` runs MMagic's tools/train.py in a new interpreter that imports mmagic before any plugin."""
    code = ('import mmagic.models, basicsr, effsr_core.compat as c; '
            'print(sorted(set(c.applied_fixes())))')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300,
                            env={k: v for k, v in os.environ.items() if k != 'PYTHONPATH'})
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'numpy_bool8' in result.stdout and 'functional_tensor_alias' in result.stdout


def test_hook_file_matches_the_installer():
    from effsr_core.compat.__main__ import PTH_LINE, hook_path

    assert os.path.isfile(hook_path()), 'run scripts/setup_env.sh (it writes the start-up hook)'
    with open(hook_path()) as f:
        assert f.read() == PTH_LINE
