"""Logs say what matters: one line for the optimizer's parameter groups, no deprecation warnings of the stack at
start-up, no false warning from BasicSR's validation; every other message stays."""
import logging
import os
import subprocess
import sys
import types

import pytest
import torch


class _Records(logging.Handler):
    """Keeps the messages a logger handles."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def mmengine_records():
    """The messages of a fresh current mmengine logger (what ``print_log(logger='current')`` writes to)."""
    from mmengine.logging import MMLogger

    logger = MMLogger.get_instance(f'test_logs_{id(object())}', log_level='INFO')
    records = _Records()
    logger.addHandler(records)
    yield records
    logger.removeHandler(records)


class _Toy(torch.nn.Module):
    """Named like the SSL networks: a flow branch at a lower LR, scaling factors at a higher one, a frozen part."""

    def __init__(self):
        super().__init__()
        self.spynet = torch.nn.Sequential(torch.nn.Conv2d(2, 2, 3), torch.nn.Conv2d(2, 2, 3))
        self.body = torch.nn.Conv2d(2, 2, 3)
        self.body_scale = torch.nn.Parameter(torch.ones(2))
        self.frozen = torch.nn.Conv2d(2, 2, 1)
        self.frozen.requires_grad_(False)


def _constructor(paramwise_cfg):
    from mmengine.optim import DefaultOptimWrapperConstructor

    return DefaultOptimWrapperConstructor(dict(optimizer=dict(type='Adam', lr=1e-3)), paramwise_cfg)


def test_optimizer_parameter_groups_are_one_line_per_build(mmengine_records):
    build = _constructor(dict(custom_keys={'spynet': dict(lr_mult=0.5), '_scale': dict(lr_mult=10.)}))
    optim_wrapper = build(_Toy())
    assert sum(len(group['params']) for group in optim_wrapper.optimizer.param_groups) == 7
    summary = ('paramwise_options -- 5 of 7 parameters set apart: 1 lr=0.01 lr_mult=10.0 (body_scale); '
               '4 lr=0.0005 lr_mult=0.5 (spynet.0.weight, ...)')
    paramwise = [m for m in mmengine_records.messages if m.startswith('paramwise_options')]
    assert paramwise == [summary]
    # the constructor's other messages are untouched: the frozen parameters are still named
    assert 'frozen.weight is skipped since its requires_grad=False' in mmengine_records.messages

    build(_Toy())  # a rebuild (SSL rebuilds the optimizer at pruning): one more line
    assert [m for m in mmengine_records.messages if m.startswith('paramwise_options')] == [summary, summary]


def test_no_summary_without_paramwise_options(mmengine_records):
    _constructor(None)(_Toy())
    _constructor(dict(custom_keys={'not_a_parameter': dict(lr_mult=2.)}))(_Toy())
    assert not [m for m in mmengine_records.messages if m.startswith('paramwise_options')]


@pytest.mark.slow
def test_start_up_has_no_deprecation_warnings_of_the_stack_and_keeps_the_others():
    code = '\n'.join([
        'import warnings',
        'import mim',  # mim imports pkg_resources at start-up
        'from mmengine.utils import is_installed',
        'assert is_installed("mmengine")',  # imports and reloads pkg_resources
        'import effsr_core.mmagic, effsr_core.basicsr',  # mmagic imports diffusers
        'import torch.utils._pytree as pytree',
        'class Mine:',
        '    pass',
        'pytree._register_pytree_node(Mine, lambda x: ([], None), lambda values, context: Mine())',
        'warnings.warn("pkg_resources: another message", UserWarning)',
    ])
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONWARNINGS')}
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'pkg_resources is deprecated' not in result.stderr
    assert 'diffusers/utils/outputs.py' not in result.stderr
    # only those two are filtered: the same deprecation from other code, and other warnings, still show
    assert '<string>:9: FutureWarning: `torch.utils._pytree._register_pytree_node` is deprecated' in result.stderr
    assert '<string>:10: UserWarning: pkg_resources: another message' in result.stderr


def test_basicsr_video_validation_without_the_false_warning(tiny_video_val):
    from basicsr.data.video_test_dataset import VideoRecurrentTestDataset
    from basicsr.models import video_recurrent_model

    from ssl_plugin.archs import SSLBasicVSR

    dataset = VideoRecurrentTestDataset({'name': 'REDS4', 'io_backend': {'type': 'disk'}, 'cache_data': True,
                                         'num_frame': -1, **tiny_video_val})
    model = object.__new__(video_recurrent_model.VideoRecurrentModel)
    torch.manual_seed(0)
    model.__dict__.update(device=torch.device('cpu'), net_g=SSLBasicVSR(num_feat=4, num_block=1),
                          opt={'val': {'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0}}},
                               'is_train': True, 'dist': False, 'rank': 0})
    validated = []
    model._log_validation_metric_values = lambda it, name, tb: validated.append(model.metric_results['000'].clone())
    records = _Records()
    logger = logging.getLogger('basicsr')
    logger.addHandler(records)
    try:
        model.nondist_validation(types.SimpleNamespace(dataset=dataset), 1, None, False)  # BasicSR's single-process
    finally:
        logger.removeHandler(records)
    assert validated and validated[0].shape == (8, 1) and (validated[0] > 0).all()  # PSNR of all 8 frames
    assert not [m for m in records.messages if 'nondist_validation is not implemented' in m]
