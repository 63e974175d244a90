"""Checkpoints load safely (no pickled code runs), fail in one line naming the file, say what a checkpoint that does
not fit seems to be, and are written atomically; ``auto_resume`` skips a state truncated by a killed run."""
import logging
import os

import pytest
import torch
from torch import nn

from effsr_core import compat
from effsr_core.archs.rfdn_arch import RFDN
from effsr_core.checkpoints import (TRUST_ENV, CheckpointError, atomic_write, load_file, load_weights,
                                    read_generator_state, save_atomic)
from effsr_core.plugins import import_plugins
from effsr_core.networks import ModelBuildError, load_checkpoint
from ssl_plugin.archs import SSLBasicVSR

compat.install()
import_plugins()


class RunsCode:
    """Unpickling this creates ``marker``: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


@pytest.fixture
def malicious(tmp_path):
    """A BasicSR-, mmengine- and profiler-shaped checkpoint whose unpickling would create ``marker``."""
    marker = tmp_path / 'code_ran'
    path = tmp_path / 'malicious.pth'
    weights = RFDN(num_feat=8, num_blocks=1).state_dict()
    torch.save({'params': weights, 'state_dict': weights, 'iter': 2, 'epoch': 0, 'optimizers': [],
                'schedulers': [], 'payload': RunsCode(marker)}, path)
    yield path
    assert not marker.exists(), 'the pickled code ran'


def _one_line_naming(error, path):
    message = str(error.value)
    assert '\n' not in message and str(path) in message, message
    return message


def _truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


# ------------------------------------------------------------------------------------------- reading
def test_unsafe_truncated_and_foreign_files_are_refused_in_one_line(tmp_path, malicious):
    with pytest.raises(CheckpointError, match=f'posix.system.*{TRUST_ENV}=1') as error:
        read_generator_state(malicious)
    _one_line_naming(error, malicious)
    torch.save({'params': RFDN(num_feat=8, num_blocks=1).state_dict()}, tmp_path / 'good.pth')
    (tmp_path / 'notes.pth').write_text('not a checkpoint\n')
    (tmp_path / 'empty.pth').write_bytes(b'')
    for path in (_truncated(tmp_path / 'good.pth'), tmp_path / 'notes.pth', tmp_path / 'empty.pth'):
        with pytest.raises(CheckpointError, match='not a readable PyTorch checkpoint') as error:
            read_generator_state(path)
        _one_line_naming(error, path)


def test_trusting_is_one_explicit_opt_in(tmp_path, monkeypatch):
    import datetime

    path = tmp_path / 'old.pth'
    torch.save({'params': {'w': torch.ones(1)}, 'saved': datetime.date(2020, 1, 1)}, path)
    with pytest.raises(CheckpointError, match='datetime.date'):
        load_file(path)
    monkeypatch.setenv(TRUST_ENV, '1')
    assert load_file(path)['saved'] == datetime.date(2020, 1, 1)


def test_profiler_ssl_pretrained_and_teacher_refuse_pickled_code(tmp_path, malicious):
    with pytest.raises(ModelBuildError, match='refused') as error:
        load_checkpoint(RFDN(num_feat=8, num_blocks=1), malicious)
    _one_line_naming(error, malicious)
    with pytest.raises(CheckpointError, match='refused'):
        SSLBasicVSR(num_feat=8, num_block=1, pretrained=str(malicious))
    from ssl_plugin.lifecycle import SSLPruningLifecycle

    lifecycle = SSLPruningLifecycle({'method': 'ssl', 'ratio': 0.5}, teacher_path=str(malicious),
                                    curve_path=str(tmp_path / 'curve.csv'))
    with pytest.raises(CheckpointError, match='malicious.pth: refused to load: it would import'):
        lifecycle.teacher(SSLBasicVSR(num_feat=8, num_block=1))


# ------------------------------------------------------------------------------------------- fitting
@pytest.mark.parametrize('source,expected', [
    (dict(num_feat=16, num_blocks=2), r"'fea_conv.weight' has shape \[16,3,3,3\] in the checkpoint but \[8,3,3,3\]"),
    (dict(num_feat=8, num_blocks=3), r"'c.0.weight' has shape \[8,24,1,1\] in the checkpoint but \[8,16,1,1\]"),
    (dict(num_feat=8, num_blocks=2, upscale=2), r"'upsampler.0.weight' has shape \[12,8,3,3\] .* but \[48,8,3,3\]"),
])
def test_another_width_blocks_or_scale_names_the_key_shapes_and_the_arch(source, expected):
    with pytest.raises(CheckpointError, match=expected) as error:
        load_weights(RFDN(num_feat=8, num_blocks=2), RFDN(**source).state_dict(), source='x.pth')
    assert str(error.value).startswith('x.pth does not fit RFDN:')
    assert str(error.value).endswith('it looks like a state dict of RFDN with other sizes (width, blocks or scale).')


def test_another_architecture_is_recognised_or_called_unrecognised():
    with pytest.raises(CheckpointError, match=r"missing from the checkpoint.*looks like a state dict of RFDN\.$"):
        load_weights(SSLBasicVSR(num_feat=8, num_block=1), RFDN(num_feat=8, num_blocks=1).state_dict())
    with pytest.raises(CheckpointError, match='looks like a state dict of SSLBasicVSR'):
        load_weights(RFDN(num_feat=8, num_blocks=1), SSLBasicVSR(num_feat=8, num_block=1).state_dict())
    with pytest.raises(CheckpointError, match=r"is missing from the checkpoint .*architecture is unrecognised\.$"):
        load_weights(RFDN(num_feat=8, num_blocks=1), {'head.weight': torch.zeros(2), 'tail.bias': torch.zeros(1)})


def test_a_pruned_plan_that_does_not_fit_is_named():
    wide = SSLBasicVSR(num_feat=16, num_block=1)
    compact = wide.pruned(_half_plan(wide))
    with pytest.raises(CheckpointError, match=r'^compact.pth does not fit SSLBasicVSR: .*num_feat'):
        load_weights(SSLBasicVSR(num_feat=8, num_block=1), compact.state_dict(), source='compact.pth')


def _half_plan(net):
    from ssl_plugin.pruning.plan import PruningPlan

    return PruningPlan(arch=net.config, kept={'forward.0.mid': list(range(net.config['num_feat'] // 2))})


# ------------------------------------------------------------------------------------------- BasicSR
@pytest.fixture
def basicsr_warnings(caplog):
    """The WARNING messages of BasicSR's logger (which does not propagate to the root logger)."""
    logger = logging.getLogger('basicsr')
    caplog.handler.setLevel(logging.WARNING)
    logger.addHandler(caplog.handler)
    yield lambda: [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    logger.removeHandler(caplog.handler)


def _basicsr_model(tmp_path):
    from basicsr.models.base_model import BaseModel

    model = object.__new__(BaseModel)
    (tmp_path / 'models').mkdir(exist_ok=True)
    (tmp_path / 'training_states').mkdir(exist_ok=True)
    model.opt = {'path': {'models': str(tmp_path / 'models'), 'training_states': str(tmp_path / 'training_states')},
                 'dist': False, 'rank': 0}
    model.optimizers, model.schedulers = [], []
    return model


def test_basicsr_load_network_refuses_code_mismatches_and_warns_once_when_not_strict(tmp_path, malicious,
                                                                                     basicsr_warnings):
    model = _basicsr_model(tmp_path)
    with pytest.raises(CheckpointError, match='refused') as error:
        model.load_network(RFDN(num_feat=8, num_blocks=1), str(malicious))
    _one_line_naming(error, malicious)
    wide = tmp_path / 'wide.pth'
    torch.save({'params': RFDN(num_feat=16, num_blocks=1).state_dict()}, wide)
    with pytest.raises(CheckpointError, match=r"'fea_conv.weight' has shape \[16,3,3,3\]") as error:
        model.load_network(RFDN(num_feat=8, num_blocks=1), str(wide))
    _one_line_naming(error, wide)
    deeper = tmp_path / 'deeper.pth'
    torch.save({'params': RFDN(num_feat=8, num_blocks=2).state_dict()}, deeper)
    net = RFDN(num_feat=8, num_blocks=1)
    model.load_network(net, str(deeper), strict=False)
    warnings = basicsr_warnings()
    assert len(warnings) == 1 and 'not in the network (ignored): B2.' in warnings[0] and 'other shape' in warnings[0]


def test_basicsr_saves_atomically_and_reads_its_own_files_back(tmp_path):
    from basicsr.utils import get_root_logger

    get_root_logger()
    model = _basicsr_model(tmp_path)
    net = RFDN(num_feat=8, num_blocks=1)
    optimizer = torch.optim.Adam(net.parameters())
    from basicsr.models.lr_scheduler import MultiStepRestartLR

    model.optimizers, model.schedulers = [optimizer], [MultiStepRestartLR(optimizer, milestones=[2, 4])]
    model.save_network(net, 'net_g', 3)
    model.save_training_state(0, 3)
    assert sorted(os.listdir(tmp_path / 'models')) == ['net_g_3.pth']
    assert sorted(os.listdir(tmp_path / 'training_states')) == ['3.state']
    model.load_network(RFDN(num_feat=8, num_blocks=1), str(tmp_path / 'models/net_g_3.pth'))
    import basicsr.train

    opt = {'auto_resume': True, 'name': 'x', 'path': {**model.opt['path']}, 'network_g': {'type': 'RFDN'}}
    assert basicsr.train.load_resume_state(opt)['schedulers'][0]['milestones'] == {2: 1, 4: 1}  # a Counter


def test_basicsr_resume_refuses_code(tmp_path, malicious):
    import basicsr.train

    opt = {'auto_resume': False, 'name': 'x', 'path': {'resume_state': str(malicious), 'models': str(tmp_path)}}
    with pytest.raises(CheckpointError, match='refused') as error:
        basicsr.train.load_resume_state(opt)
    _one_line_naming(error, malicious)
    states = tmp_path / 'training_states'
    states.mkdir()
    os.replace(malicious, states / '4.state')
    opt = {'auto_resume': True, 'name': 'x', 'path': {'training_states': str(states), 'models': str(tmp_path)}}
    assert basicsr.train.load_resume_state(opt) is None  # the only state is refused: nothing to resume from


@pytest.mark.parametrize('broken', ['4.state', 'net_g_4.pth'])
def test_auto_resume_skips_a_state_truncated_by_a_killed_run(tmp_path, basicsr_warnings, broken):
    import basicsr.train

    model = _basicsr_model(tmp_path)
    net = RFDN(num_feat=8, num_blocks=1)
    for iteration in (2, 4):
        model.save_network(net, 'net_g', iteration)
        model.save_training_state(0, iteration)
    _truncated(tmp_path / ('training_states' if broken.endswith('.state') else 'models') / broken)
    opt = {'auto_resume': True, 'name': 'x', 'path': {**model.opt['path']}, 'network_g': {'type': 'RFDN'}}
    state = basicsr.train.load_resume_state(opt)
    assert state['iter'] == 2 and opt['path']['resume_state'].endswith('2.state')
    assert opt['path']['pretrain_network_g'].endswith('net_g_2.pth')
    assert [message for message in basicsr_warnings() if 'skipping' in message and '4.state' in message]


# ------------------------------------------------------------------------------------------- mmengine
class ToyEditor:
    """Built lazily: an mmengine model holding an RFDN generator."""

    @staticmethod
    def build(num_feat=8):
        from mmengine.model import BaseModel

        class Editor(BaseModel):
            def __init__(self):
                super().__init__()
                self.generator = RFDN(num_feat=num_feat, num_blocks=1)

            def forward(self, inputs, data_samples=None, mode='tensor'):
                return self.generator(inputs)

        return Editor()


def _runner(tmp_path, model):
    from mmengine.runner import Runner

    return Runner(model=model, work_dir=str(tmp_path / 'work'),
                  default_scope='mmengine',
                  experiment_name=f'toy_{id(model)}')


def _mmengine_checkpoint(tmp_path, model):
    """What mmengine's CheckpointHook writes: weights, message hub (HistoryBuffers of numpy arrays), optimizer."""
    from mmengine.logging import MessageHub
    from mmengine.runner.checkpoint import save_checkpoint

    hub = MessageHub.get_instance('toy_hub')
    for value in (0.5, 0.25):
        hub.update_scalar('train/loss', value)
    hub.update_info('iter', 2)
    path = tmp_path / 'iter_2.pth'
    save_checkpoint({'meta': {'iter': 2, 'epoch': 0}, 'state_dict': model.state_dict(),
                     'message_hub': hub.state_dict(),
                     'optimizer': torch.optim.Adam(model.parameters()).state_dict()}, str(path))
    assert os.listdir(tmp_path).count('iter_2.pth') == 1 and not [n for n in os.listdir(tmp_path) if '.tmp' in n]
    return path


def test_mmengine_load_from_and_resume_are_safe_and_shape_checked(tmp_path, malicious):
    from mmengine.logging import HistoryBuffer

    own = _mmengine_checkpoint(tmp_path, ToyEditor.build())
    runner = _runner(tmp_path, ToyEditor.build())
    checkpoint = runner.load_checkpoint(str(own))  # load_from
    assert isinstance(checkpoint['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    for load in (runner.load_checkpoint, runner.resume):  # load_from, --resume
        with pytest.raises(CheckpointError, match='refused') as error:
            load(str(malicious))
        _one_line_naming(error, malicious)
    (tmp_path / 'wide').mkdir()
    wide = _mmengine_checkpoint(tmp_path / 'wide', ToyEditor.build(num_feat=16))
    with pytest.raises(CheckpointError, match=r"does not fit Editor: 'generator.fea_conv.weight' has shape "
                                              r"\[16,3,3,3\]") as error:
        runner.load_checkpoint(str(wide))
    _one_line_naming(error, wide)
    with pytest.raises(CheckpointError, match='not a readable') as error:
        runner.load_checkpoint(str(_truncated(own)))


# ------------------------------------------------------------------------------------------- atomic writes
def test_a_failed_write_leaves_the_previous_file_and_no_temporary_file(tmp_path):
    path = tmp_path / 'net.pth'
    save_atomic({'w': torch.ones(1)}, path)
    with pytest.raises(Exception):
        save_atomic({'w': torch.zeros(1), 'bad': lambda: None}, path)  # pickling fails halfway through
    assert os.listdir(tmp_path) == ['net.pth'] and torch.equal(load_file(path)['w'], torch.ones(1))
    with pytest.raises(KeyboardInterrupt):  # a run stopped while writing
        with atomic_write(path) as f:
            f.write(b'partial')
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ['net.pth'] and torch.equal(load_file(path)['w'], torch.ones(1))


def test_teacher_and_factor_curve_are_written_atomically(tmp_path):
    from ssl_plugin.lifecycle import SSLPruningLifecycle
    from ssl_plugin.losses import TemporalFinetuneLoss

    lifecycle = SSLPruningLifecycle({'method': 'ssl', 'ratio': 0.5}, teacher_path=str(tmp_path / 'teacher.pth'),
                                    curve_path=str(tmp_path / 'curve.csv'), tf_loss=TemporalFinetuneLoss(),
                                    log=lambda message: None)
    net = SSLBasicVSR(num_feat=8, num_block=1)
    lifecycle.start(net)
    for iteration in (1, 2):
        lifecycle.curve.record(iteration, 0.1, 0.5, 1.0)
    lifecycle.curve.save_plot()
    assert sorted(os.listdir(tmp_path)) == ['curve.csv', 'curve.png', 'teacher.pth']
    assert [row['iter'] for row in lifecycle.curve.rows()] == [1, 2]
    assert set(read_generator_state(tmp_path / 'teacher.pth')) == set(net.state_dict())


def test_a_network_without_weights_fits_an_empty_state_dict():
    assert not load_weights(nn.ReLU(), {})
