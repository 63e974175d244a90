"""MemSR initialisation-aware distillation (Sec. 3.4): the loss (Eq. 12/14), the lifecycle, BasicSR's and MMagic's
real training loops with resume, testing from the student checkpoint alone, and bad input.

The initialisation file is a fake of the one ``python -m memsr_plugin.init`` writes (same format, random adapters);
the data is one tiny image pair without random crop or flips, so every iteration sees the same batch and a resumed
run must follow the uninterrupted one exactly.
"""
import copy
import re
import subprocess
import sys

import pytest
import torch
import yaml

from effsr_core.options import OptionError
from bad_options import DROP, changed, refused_train

STUDENT_WIDTH = 4  # feature channels of every hidden student layer
TOTAL = 4  # iterations of the tiny trainings (checkpoints every 2)


# ---------------------------------------------------------------------------------------------------- helpers
def _student_kwargs(teacher_plain) -> dict:
    """A plain student as deep as the teacher's plain form: 4 feature channels per hidden layer, the same
    pixel shuffles and output layer."""
    shuffles = list(teacher_plain.shuffles)
    widths = [STUDENT_WIDTH * s * s for s in shuffles[:-1]] + [teacher_plain.widths[-1]]
    return {'in_channels': 3, 'widths': widths, 'shuffles': shuffles,
            'acts': ['relu'] * (len(widths) - 1) + ['identity']}


def _write_init(path, teacher, seed=0, layers=None, teacher_form=None) -> dict:
    """A fake initialisation file for ``teacher`` in the format of ``memsr_plugin.init``; returns its content."""
    from memsr_plugin.conversion import PlainConvSR, convert
    from memsr_plugin.distillation import feature_channels

    teacher_form = teacher_form or {'offset': 10.0}
    plain = convert(teacher, **teacher_form)
    student_kwargs = _student_kwargs(plain)
    torch.manual_seed(seed)
    student = PlainConvSR(**student_kwargs)
    layers = layers or [0, len(plain.widths) - 2]
    s_channels, t_channels = feature_channels(student), feature_channels(plain)
    generator = torch.Generator().manual_seed(seed)
    adapters = [{'weight': 0.3 * torch.randn(t_channels[i], s_channels[i], 1, 1, generator=generator),
                 'bias': 0.1 * torch.randn(t_channels[i], generator=generator)} for i in layers]
    content = {'params': student.state_dict(), 'student': student_kwargs, 'adapters': adapters, 'layers': layers,
               'teacher_form': teacher_form, 'widths': student_kwargs['widths'], 'errors': [0.0] * len(layers)}
    torch.save(content, path)
    return content


@pytest.fixture(scope='module')
def image_pair(tmp_path_factory):
    """One 32x32 HR image and its 8x8 LR version (x4), in the DIV2K layout BasicSR and MMagic read."""
    import cv2
    import numpy as np

    root = tmp_path_factory.mktemp('images')
    (root / 'HR').mkdir()
    (root / 'LR').mkdir()
    hr = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    cv2.imwrite(str(root / 'HR' / '0001.png'), hr)
    cv2.imwrite(str(root / 'LR' / '0001x4.png'), cv2.resize(hr, (8, 8), interpolation=cv2.INTER_AREA))
    return root


@pytest.fixture(scope='module')
def basicsr_files(tmp_path_factory):
    """A tiny BasicSR EDSR teacher checkpoint and a fake initialisation file for it."""
    from basicsr.archs.edsr_arch import EDSR

    import effsr_core.basicsr  # noqa: F401  (registers the describers and the model)

    root = tmp_path_factory.mktemp('basicsr_files')
    torch.manual_seed(0)
    teacher = EDSR(num_in_ch=3, num_out_ch=3, num_feat=4, num_block=1, upscale=4)
    torch.save({'params': teacher.state_dict()}, root / 'teacher.pth')
    init = _write_init(root / 'init.pth', teacher)
    return {'teacher': root / 'teacher.pth', 'init': root / 'init.pth', 'student': init['student'],
            'teacher_net': teacher, 'root': root}


# ---------------------------------------------------------------------------------------------------- the loss
def test_loss_value_by_hand_and_its_decay():
    from memsr_plugin.losses import InitAwareDistillationLoss

    generator = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(3, 2, 1, 1, generator=generator), torch.randn(3, generator=generator)
    student = [torch.rand(1, 2, 4, 4, generator=generator), torch.rand(1, 3, 4, 4, generator=generator)]
    teacher = [torch.rand(1, 3, 4, 4, generator=generator), torch.rand(1, 3, 4, 4, generator=generator)]
    identity = {'weight': torch.eye(3).view(3, 3, 1, 1), 'bias': torch.zeros(3)}
    loss = InitAwareDistillationLoss(loss_weight=0.5, epsilon=0.01, adapters=[{'weight': weight, 'bias': bias},
                                                                              identity])
    mapped = torch.einsum('ts,bshw->bthw', weight[:, :, 0, 0], student[0]) + bias.view(1, 3, 1, 1)
    distance = ((mapped - teacher[0]) ** 2).mean() / 2 + ((student[1] - teacher[1]) ** 2).mean() / 2
    for iteration, decay in ((0, 1.0), (5, 0.1), (10, 0.01)):  # eps^(0), eps^(1/2), eps^(1)
        assert torch.allclose(loss(student, teacher, iteration, 10), 0.5 * decay * distance, rtol=1e-5)
    with pytest.raises(ValueError, match='epsilon'):
        InitAwareDistillationLoss(epsilon=0.0)
    with pytest.raises(ValueError, match='2 student and 2 teacher features for 1 adapters'):
        InitAwareDistillationLoss(adapters=[identity])(student, teacher, 0, 1)


def test_adapters_and_student_get_gradients_and_the_teacher_does_not(basicsr_files):
    from memsr_plugin.conversion import PlainConvSR
    from memsr_plugin.distillation import DistillationInit, MemSRDistillation
    from memsr_plugin.losses import InitAwareDistillationLoss

    names = {'init_file': 'distill.init_file', 'student': 'network_g', 'teacher': 'network_t'}
    init = DistillationInit.read(str(basicsr_files['init']), 'distill.init_file')
    student = PlainConvSR(**basicsr_files['student'])
    student.load_state_dict(init.params)
    teacher = copy.deepcopy(basicsr_files['teacher_net'])
    distillation = MemSRDistillation(init, teacher, student, 0.3, 1e-5, names)
    lq, gt = torch.rand(2, 3, 6, 6), torch.rand(2, 3, 24, 24)
    output, losses, scalars = distillation.losses(student, lq, gt, torch.nn.functional.l1_loss, 0, TOTAL)
    assert output.shape == gt.shape and set(losses) == {'pix', 'distill'} and scalars['distill_weight'] == 0.3
    assert losses['distill'] > 0
    sum(losses.values()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in distillation.loss.parameters())
    assert student.convs()[0].weight.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in distillation.teacher.parameters())
    assert not distillation.teacher.training
    # the paper's balance: L1 and features at the [0, 255] scale; BasicSR's EDSR works at 255 x the [0, 1] image
    assert distillation.feature_unit == pytest.approx(1 / 255) and 'x 0.003922' in distillation.describe()
    unscaled = InitAwareDistillationLoss(0.3, 1e-5, init.adapters)
    with torch.no_grad():
        _, features = student(lq, return_features=True)
        _, teacher_features = distillation.teacher(lq, return_features=True)
        pick = lambda fs: [fs[i] for i in distillation.layers]  # noqa: E731
        assert torch.allclose(distillation.loss(pick(features), pick(teacher_features), 0, TOTAL),
                              unscaled(pick(features), pick(teacher_features), 0, TOTAL) / 255, rtol=1e-5)


def test_paper_feature_unit_follows_the_teachers_input_normalisation():
    from basicsr.archs.edsr_arch import EDSR

    from memsr_plugin.conversion.equivalence import feature_scale
    from memsr_plugin.losses import paper_feature_unit

    assert paper_feature_unit(feature_scale(EDSR(3, 3, 4, 1, 2))) == pytest.approx(1 / 255)
    assert paper_feature_unit(1.0) == 255.0  # features at the [0, 1] image's scale (MMagic's EDSRNet, std 1)


AVERAGE_ON_RANK = """
import sys, torch, torch.distributed as dist
import effsr_core.basicsr
from basicsr.archs.edsr_arch import EDSR
from memsr_plugin.conversion import PlainConvSR
from memsr_plugin.distillation import DistillationInit, MemSRDistillation
rank, port, init_file, teacher_file, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2)
teacher = EDSR(num_in_ch=3, num_out_ch=3, num_feat=4, num_block=1, upscale=4)
teacher.load_state_dict(torch.load(teacher_file, weights_only=True)['params'])
init = DistillationInit.read(init_file, 'i')
student = PlainConvSR(**torch.load(init_file, weights_only=True)['student'])
distillation = MemSRDistillation(init, teacher, student, 0.3, 1e-5, {'init_file': 'i', 'student': 's', 'teacher': 't'})
for param in distillation.loss.parameters():
    param.grad = torch.full_like(param, float(rank + 1))
distillation.average_adapter_gradients()
torch.save([param.grad for param in distillation.loss.parameters()], out)
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_adapter_gradients_are_averaged_over_processes(tmp_path, basicsr_files):
    """BasicSR's DDP wraps the student only: the lifecycle averages the adapters' gradients (two gloo ranks)."""
    import socket

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    ranks = [subprocess.Popen([sys.executable, '-c', AVERAGE_ON_RANK, str(rank), str(port), str(basicsr_files['init']),
                               str(basicsr_files['teacher']), str(tmp_path / f'{rank}.pt')],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in range(2)]
    for rank in ranks:
        output, _ = rank.communicate(timeout=300)
        assert rank.returncode == 0, output[-2000:]
    grads = [torch.load(tmp_path / f'{rank}.pt', weights_only=True) for rank in range(2)]
    assert all(torch.equal(grad, torch.full_like(grad, 1.5)) for result in grads for grad in result)


def test_adapters_that_do_not_fit_are_refused(basicsr_files, tmp_path):
    from memsr_plugin.conversion import PlainConvSR
    from memsr_plugin.distillation import DistillationInit, MemSRDistillation

    names = {'init_file': 'distill.init_file', 'student': 'network_g', 'teacher': 'network_t'}
    init = DistillationInit.read(str(basicsr_files['init']), 'distill.init_file')
    wider = dict(basicsr_files['student'], widths=[w * 2 for w in basicsr_files['student']['widths'][:-1]]
                 + basicsr_files['student']['widths'][-1:])
    with pytest.raises(OptionError, match=r'distill.init_file: adapters\[0\] maps 4 student .* network_g has 8'):
        MemSRDistillation(init, basicsr_files['teacher_net'], PlainConvSR(**wider), 0.3, 1e-5, names)


# ---------------------------------------------------------------------------------------------------- BasicSR
def _basicsr_options(workdir, image_pair, files, name='memsr_tiny') -> tuple:
    pair = {'type': 'PairedImageDataset', 'dataroot_gt': str(image_pair / 'HR'), 'dataroot_lq': str(image_pair / 'LR'),
            'filename_tmpl': '{}x4', 'io_backend': {'type': 'disk'}}
    opt = {
        'name': name, 'model_type': 'MemSRDistillModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': {'train': {'name': 'pair', **pair, 'gt_size': 32, 'use_hflip': False, 'use_rot': False,
                               'num_worker_per_gpu': 0, 'batch_size_per_gpu': 1, 'dataset_enlarge_ratio': 1,
                               'prefetch_mode': None},
                     'val': {'name': 'pair_val', **pair}},
        'network_g': {'type': 'PlainConvSR', **files['student']},
        'network_t': {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 4, 'num_block': 1, 'upscale': 4},
        'path': {'pretrain_network_g': str(files['init']), 'strict_load_g': True,
                 'pretrain_network_t': str(files['teacher']), 'resume_state': None},
        'distill': {'loss_weight': 0.3, 'epsilon': 1e-5, 'init_file': str(files['init'])},
        'train': {'ema_decay': 0, 'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.999]},
                  'scheduler': {'type': 'PyTorchOneCycleLR', 'max_lr': 1e-3, 'total_steps': TOTAL},
                  'total_iter': TOTAL, 'warmup_iter': -1, 'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}},
        'val': {'val_freq': TOTAL, 'save_img': False,
                'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False}}},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False},
    }
    path = workdir / f'{name}.yml'
    path.write_text(yaml.safe_dump(opt))
    return path, opt


def _run(module, options, workdir, *extra) -> str:
    result = subprocess.run([sys.executable, '-m', module, '-opt', str(options), *extra], cwd=workdir,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def _load(path) -> dict:
    return torch.load(path, map_location='cpu', weights_only=True)


@pytest.mark.slow
def test_basicsr_training_resume_and_test_from_the_student_checkpoint(tmp_path, image_pair, basicsr_files):
    from memsr_plugin.distillation import ADAPTERS_KEY

    options, opt = _basicsr_options(tmp_path, image_pair, basicsr_files)
    log = _run('effsr_core.train', options, tmp_path)
    assert 'l_distill' in log and 'distill_weight' in log and 'Validation pair_val' in log
    models = tmp_path / 'experiments' / opt['name'] / 'models'
    straight = _load(models / f'net_g_{TOTAL}.pth')
    assert set(straight) == {'params', ADAPTERS_KEY}
    assert not list(models.glob('net_t*'))  # the teacher is never saved
    init = _load(basicsr_files['init'])
    assert not torch.equal(straight[ADAPTERS_KEY]['0.weight'], init['adapters'][0]['weight'])  # they trained

    # resume from the state of iteration 2: the teacher comes from path.pretrain_network_t (not net_t_2.pth), the
    # adapters from net_g_2.pth; the same batch every iteration makes the trajectory comparable exactly
    state = tmp_path / 'experiments' / opt['name'] / 'training_states' / '2.state'
    log = _run('effsr_core.train', options, tmp_path, '--force_yml', f'path:resume_state={state}')
    assert 'Resuming training from epoch' in log and 'iter: 2' in log
    resumed = _load(models / f'net_g_{TOTAL}.pth')
    for key in ('params', ADAPTERS_KEY):
        assert straight[key].keys() == resumed[key].keys()
        for name, value in straight[key].items():
            assert torch.allclose(value, resumed[key][name], rtol=0, atol=1e-6), (key, name)

    # BasicSR's own SRModel and test pipeline, from the student checkpoint alone
    test_opt = {'name': 'test_plain', 'model_type': 'SRModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 0,
                'datasets': {'test_1': dict(opt['datasets']['val'])},
                'network_g': opt['network_g'],
                'path': {'pretrain_network_g': str(models / 'net_g_latest.pth'), 'strict_load_g': True},
                'val': {'save_img': False, 'metrics': opt['val']['metrics']}}
    test_options = tmp_path / 'test.yml'
    test_options.write_text(yaml.safe_dump(test_opt))
    assert '# psnr:' in _run('effsr_core.test', test_options, tmp_path)


def test_basicsr_resume_keeps_the_teacher_path():
    """BasicSR's check_resume points every network_* at net_*_<iter>.pth; the teacher is never saved."""
    from basicsr.utils import check_resume

    import effsr_core.basicsr  # noqa: F401  (registers MemSRDistillModel)
    from effsr_core.basicsr.plugin_model import keep_frozen_networks

    opt = {'model_type': 'MemSRDistillModel', 'network_g': {}, 'network_t': {},
           'path': {'resume_state': '2.state', 'models': 'models', 'pretrain_network_g': 'init.pth',
                    'pretrain_network_t': 'teacher.pth'}}
    keep_frozen_networks(opt)
    check_resume(opt, 2)
    assert opt['path']['pretrain_network_t'] == 'teacher.pth'
    assert opt['path']['pretrain_network_g'] == 'models/net_g_2.pth'


def _bad_adapters(files, root) -> str:
    init = _load(files['init'])
    init['adapters'][0]['weight'] = init['adapters'][0]['weight'][:, :-1]  # one student channel short
    torch.save(init, root / 'bad_adapters.pth')
    return str(root / 'bad_adapters.pth')


def _bad_layers(files, root) -> str:
    init = _load(files['init'])
    init['layers'][1] = 99
    torch.save(init, root / 'bad_layers.pth')
    return str(root / 'bad_layers.pth')


BASICSR_CASES = {
    'unknown distill key': ({'distill.loss_weigth': 0.3}, "distill: unknown key.*Did you mean 'loss_weight'"),
    'negative lambda': ({'distill.loss_weight': -0.1}, r'distill.loss_weight: -0.1 is out of range'),
    'epsilon zero': ({'distill.epsilon': 0.0}, r'distill.epsilon: 0.0 is out of range; expected float in \(0, 1\]'),
    'epsilon above one': ({'distill.epsilon': 1.5}, 'distill.epsilon: 1.5 is out of range'),
    'no init file': ({'distill.init_file': DROP}, 'distill.init_file: must be set'),
    'missing init file': ({'distill.init_file': 'no/such/init.pth'}, "distill.init_file: file 'no/such/init.pth'"),
    'adapters of another student': ({'distill.init_file': _bad_adapters},
                                    r'distill.init_file: adapters\[0\] maps 3 student .* network_g has 4'),
    'layer outside the network': ({'distill.init_file': _bad_layers}, r'distill.init_file: layers\[1\] = 99'),
    'no teacher': ({'network_t': DROP}, 'network_t: the teacher network is required'),
    'no teacher weights': ({'path.pretrain_network_t': DROP}, 'path.pretrain_network_t'),
    'student not plain': ({'network_g': {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 4,
                                         'num_block': 1, 'upscale': 4}}, 'network_g.type: EDSR is not PlainConvSR'),
    'one-cycle shorter than the run': ({'train.scheduler.total_steps': 2},
                                       r'train.scheduler.total_steps: 2 is below train.total_iter \(4\)'),
    'misspelt section': ({'distill': DROP, 'distil': {'loss_weight': 0.3}},
                         "distil: unknown top-level key.*Did you mean 'distill'"),
}


@pytest.mark.parametrize('case', list(BASICSR_CASES))
def test_basicsr_bad_input_is_refused_before_anything_is_written(monkeypatch, tmp_path, image_pair,
                                                                 basicsr_files, case):
    changes, message = BASICSR_CASES[case]
    _, opt = _basicsr_options(tmp_path, image_pair, basicsr_files)
    opt = changed(opt, {key: value(basicsr_files, tmp_path) if callable(value) else value
                        for key, value in changes.items()})
    assert re.search(message, refused_train(monkeypatch, tmp_path, opt))


def test_basicsr_base_options_of_the_bad_cases_are_accepted(monkeypatch, tmp_path, image_pair, basicsr_files):
    import basicsr.train

    from effsr_core.basicsr.entry import train

    options, _ = _basicsr_options(tmp_path, image_pair, basicsr_files)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'argv', [sys.argv[0]])
    monkeypatch.setattr(basicsr.train, 'train_pipeline', lambda root_path: print('accepted'))
    train(['-opt', str(options)])


# ---------------------------------------------------------------------------------------------------- MMagic
MMAGIC_CONFIG = 'options/mmagic/memsr/memsr_distill_x4_tiny_offline.py'


@pytest.fixture(scope='module')
def mmagic_files(tmp_path_factory):
    """A tiny MMagic EDSRNet teacher checkpoint (as ``mim train`` writes it) and a fake initialisation file."""
    import effsr_core.mmagic  # noqa: F401
    from mmagic.models.editors.edsr.edsr_net import EDSRNet

    root = tmp_path_factory.mktemp('mmagic_files')
    torch.manual_seed(0)
    teacher = EDSRNet(in_channels=3, out_channels=3, mid_channels=4, num_blocks=1, upscale_factor=4)
    torch.save({'meta': {}, 'state_dict': {f'generator.{k}': v for k, v in teacher.state_dict().items()}},
               root / 'teacher.pth')
    init = _write_init(root / 'init.pth', teacher)
    return {'teacher': root / 'teacher.pth', 'init': root / 'init.pth', 'student': init['student']}


def _mmagic_config(workdir, repo_root, image_pair, files, resume=False):
    from mmengine.config import Config

    cfg = Config.fromfile(str(repo_root / MMAGIC_CONFIG))
    cfg.work_dir = str(workdir)
    cfg.model.generator = dict(type='PlainConvSR', **files['student'])
    cfg.model.teacher.update(mid_channels=4, num_blocks=1)
    cfg.model.teacher_checkpoint = str(files['teacher'])
    cfg.model.distill.init_file = str(files['init'])
    pipeline = [transform for transform in cfg.train_pipeline
                if transform['type'] in ('LoadImageFromFile', 'SetValues', 'PackInputs')]  # the same batch always
    cfg.train_dataloader.update(batch_size=1, num_workers=0)
    cfg.train_dataloader.dataset.update(data_root=str(image_pair), data_prefix=dict(img='LR', gt='HR'),
                                        pipeline=pipeline)
    cfg.train_cfg.update(max_iters=TOTAL, val_interval=1000)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.param_scheduler.update(total_steps=TOTAL, max_lr=1e-2)  # steps large enough to tell runs apart
    cfg.default_hooks.checkpoint.update(interval=2, max_keep_ckpts=10)
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(seed=0)
    cfg.resume = resume
    return cfg


@pytest.mark.slow
def test_mmagic_training_and_resume(tmp_path, repo_root, image_pair, mmagic_files):
    import shutil

    from mmengine.runner import Runner

    full = tmp_path / 'uninterrupted'
    runner = Runner.from_cfg(_mmagic_config(full, repo_root, image_pair, mmagic_files))
    runner.train()
    assert 'train/loss_distill' in runner.message_hub.log_scalars
    straight = torch.load(full / f'iter_{TOTAL}.pth', weights_only=False)['state_dict']
    assert {key.split('.')[0] for key in straight} == {'generator', 'distill_loss'}  # no teacher
    init = _load(mmagic_files['init'])
    assert not torch.allclose(straight['distill_loss.adapters.0.weight'], init['adapters'][0]['weight'], atol=1e-4)
    optimised = {id(p) for group in runner.optim_wrapper.optimizer.param_groups for p in group['params']}
    assert {id(p) for p in runner.model.distill_loss.parameters()} <= optimised
    assert not {id(p) for p in runner.model.distillation.teacher.parameters()} & optimised

    from effsr_core.checkpoints import load_weights, read_generator_state
    from memsr_plugin.conversion import PlainConvSR

    assert not load_weights(PlainConvSR(**mmagic_files['student']), read_generator_state(full / f'iter_{TOTAL}.pth'))
    # (the student alone loads strictly from the editor's checkpoint: inference needs no teacher or adapters)

    resumed_dir = tmp_path / 'resumed'
    resumed_dir.mkdir()
    shutil.copy(full / 'iter_2.pth', resumed_dir / 'iter_2.pth')
    cfg = _mmagic_config(resumed_dir, repo_root, image_pair, mmagic_files, resume=True)
    cfg.load_from = str(resumed_dir / 'iter_2.pth')
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == TOTAL
    resumed = torch.load(resumed_dir / f'iter_{TOTAL}.pth', weights_only=False)['state_dict']
    assert straight.keys() == resumed.keys()
    for name, value in straight.items():
        assert torch.allclose(value, resumed[name], rtol=0, atol=1e-6), name


@pytest.mark.parametrize('change,message', [
    ({'distill': {'epsilon': 2.0}}, 'model.distill.epsilon: 2.0 is out of range'),
    ({'distill': {'init_fle': 'x'}}, "model.distill: unknown key.*Did you mean 'init_file'"),
    ({'teacher_ckpt': 'x'}, 'model: unknown key'),
    ({'teacher_checkpoint': 'no/such.pth'}, "model.teacher_checkpoint: file 'no/such.pth' does not exist"),
])
def test_mmagic_bad_input_names_the_option(tmp_path, repo_root, image_pair, mmagic_files, change, message):
    from mmengine.registry import init_default_scope
    from mmagic.registry import MODELS

    cfg = _mmagic_config(tmp_path, repo_root, image_pair, mmagic_files)
    init_default_scope('mmagic')
    model_cfg = copy.deepcopy(cfg.model)
    for key, value in change.items():
        if isinstance(value, dict):
            model_cfg[key].update(value)
        else:
            model_cfg[key] = value
    MODELS.build(copy.deepcopy(cfg.model))  # the unchanged config builds
    with pytest.raises(OptionError, match=message):
        MODELS.build(model_cfg)
