"""MemSR's commands on toolbox checkpoints: ``memsr_plugin.convert`` (the equivalence check, the plain checkpoint and
options it writes, refusals) and ``memsr_plugin.init --distill-options`` (the student's options, filled in from the
teacher and the initialisation), and the profiler measuring re-parameterisable networks in their deployed form."""
import json

import pytest
import torch
import yaml

from effsr_core.profiling.memory import measure_peak_memory
from effsr_core.networks import build_model_from_options
from memsr_plugin import convert as convert_command
from memsr_plugin import init as init_command
from memsr_plugin.conversion import PlainConvSR, RepSR

from basicsr.archs.edsr_arch import EDSR  # noqa: E402

TEACHER = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 2, 'upscale': 2}


@pytest.fixture()
def teacher_files(tmp_path):
    """A BasicSR teacher: options (a trainable SRModel experiment) and random weights."""
    torch.manual_seed(0)
    net = EDSR(**{k: v for k, v in TEACHER.items() if k != 'type'})
    options = tmp_path / 'teacher.yml'
    options.write_text(yaml.safe_dump({'name': 'teacher', 'model_type': 'SRModel', 'scale': 2,
                                       'network_g': TEACHER, 'path': {'pretrain_network_g': None}}))
    torch.save({'params': net.state_dict()}, tmp_path / 'teacher.pth')
    return net, options, tmp_path / 'teacher.pth'


def test_convert_writes_an_equivalent_plain_network_and_its_options(tmp_path, teacher_files, capsys):
    net, options, checkpoint = teacher_files
    assert convert_command.main(['-opt', str(options), '--checkpoint', str(checkpoint),
                                 '--output', str(tmp_path / 'out')]) == 0
    assert 'float64 relative error' in capsys.readouterr().out
    written = yaml.safe_load((tmp_path / 'out' / 'teacher_plain.yml').read_text())
    assert written['name'] == 'teacher_plain' and written['network_g']['type'] == 'PlainConvSR'
    assert written['model_type'] == 'SRModel'  # the rest of the options is kept
    plain = build_model_from_options(tmp_path / 'out' / 'teacher_plain.yml', written['path']['pretrain_network_g'])
    assert isinstance(plain, PlainConvSR)
    x = torch.rand(1, 3, 11, 13)
    with torch.no_grad():
        assert (plain(x) - net.eval()(x)).abs().max() < 1e-5
    summary = json.loads((tmp_path / 'out' / 'teacher_plain.json').read_text())
    assert summary['check']['float64'] < 1e-9 and summary['check']['float32'] <= summary['check']['bound']


def test_convert_refuses_an_inexact_conversion_and_writes_nothing(tmp_path, teacher_files, monkeypatch, capsys):
    """A carrying constant C so small that the skipped values fall below -C: the check catches it."""
    _, options, checkpoint = teacher_files
    big = torch.load(checkpoint, weights_only=True)
    big['params'] = {k: v * 30 if k.startswith('body') else v for k, v in big['params'].items()}
    torch.save(big, checkpoint)
    status = convert_command.main(['-opt', str(options), '--checkpoint', str(checkpoint), '--offset', '1e-3',
                                   '--relu-body', '--output', str(tmp_path / 'out')])
    assert status == 1 and 'not equivalent' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists() or not any((tmp_path / 'out').iterdir())


RCAN = {'type': 'RCAN', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_group': 1, 'num_block': 1,
        'squeeze_factor': 4, 'upscale': 2}


@pytest.mark.parametrize('network,fitting_weights,message', [
    ({**TEACHER, 'num_feat': 4}, False, r"'conv_first.weight' has shape \[8,3,3,3\] in the checkpoint but \[4,3,3,3\]"),
    ({**TEACHER, 'upscale': 5}, False, 'scale 5 is not supported'),
    (RCAN, True, r'body\.0\.residual_group\.0\.rcab\.3: call_function mul is not a single-input operation'),
], ids=['checkpoint of another width', 'unsupported scale', 'channel attention'])
def test_commands_refuse_a_teacher_that_does_not_fit(tmp_path, teacher_files, capsys, network, fitting_weights,
                                                     message):
    """A checkpoint of another width, a scale the upsampler does not support, a topology without a plain form:
    both commands stop with status 2 and one message, and write nothing."""
    import re

    from effsr_core.basicsr.build import build_network

    _, options, checkpoint = teacher_files
    opt = yaml.safe_load(options.read_text())
    opt['network_g'] = network
    options.write_text(yaml.safe_dump(opt))
    if fitting_weights:
        torch.save({'params': build_network(network).state_dict()}, checkpoint)
    for command, extra in ((convert_command, []), (init_command, ['--theta', '0.1'])):
        with pytest.raises(SystemExit) as exit_:
            command.main(['-opt', str(options), '--checkpoint', str(checkpoint), '--output',
                          str(tmp_path / 'out'), *extra])
        error = capsys.readouterr().err
        assert exit_.value.code == 2 and re.search(message, error), error
        assert not (tmp_path / 'out').exists()


def test_init_writes_distillation_options_for_its_student(tmp_path, teacher_files, repo_root):
    _, options, checkpoint = teacher_files
    template = repo_root / 'options/basicsr/memsr/demo_MemSR_distill_x4_offline.yml'
    init_command.main(['-opt', str(options), '--checkpoint', str(checkpoint), '--theta', '0.2', '--samples', '4',
                       '--patch', '12', '--output', str(tmp_path / 'init'), '--distill-options', str(template),
                       '--name', 'student_x2'])
    content = torch.load(tmp_path / 'init' / 'student_init.pth', weights_only=True)
    written = yaml.safe_load((tmp_path / 'init' / 'student_x2.yml').read_text())
    assert written['name'] == 'student_x2' and written['model_type'] == 'MemSRDistillModel'
    assert written['network_g'] == {'type': 'PlainConvSR', **content['student']}
    assert written['network_t'] == TEACHER
    assert written['path']['pretrain_network_t'] == str(checkpoint)
    assert written['path']['pretrain_network_g'] == written['distill']['init_file'] == str(
        tmp_path / 'init' / 'student_init.pth')
    template_options = yaml.safe_load(template.read_text())
    assert written['train'] == template_options['train'] and written['datasets'] == template_options['datasets']


def test_init_refuses_a_template_of_the_other_toolbox_before_any_work(tmp_path, teacher_files, repo_root, capsys):
    _, options, checkpoint = teacher_files
    with pytest.raises(SystemExit) as exit_:
        init_command.main(['-opt', str(options), '--checkpoint', str(checkpoint), '--theta', '0.2',
                           '--output', str(tmp_path / 'init'), '--distill-options',
                           str(repo_root / 'options/mmagic/memsr/memsr_distill_x4_tiny_offline.py')])
    assert exit_.value.code == 2 and 'mmagic template for a basicsr teacher' in capsys.readouterr().err
    assert not (tmp_path / 'init').exists()


def test_plain_network_keeps_one_feature_map_alive():
    """Without ``return_features`` a deep plain network's peak is a few feature maps, not one per layer."""
    depth, width, size = 12, 8, 64
    net = PlainConvSR(3, [width] * depth + [3], acts=['relu'] * depth + ['identity'])
    feature_bytes = width * size * size * 4
    peak = measure_peak_memory(net, torch.rand(1, 3, size, size)).peak_bytes
    parameters = sum(p.numel() * 4 for p in net.parameters())
    assert peak - parameters < 4 * feature_bytes


def test_profiler_measures_the_deployed_form(tmp_path, capsys):
    from effsr_core.profile import main as profile

    torch.manual_seed(0)
    options = tmp_path / 'rep.yml'
    options.write_text(yaml.safe_dump({'network_g': {'type': 'RepSR', 'num_feat': 4, 'num_block': 1,
                                                     'upscale': 2}}))
    torch.save({'params': RepSR(num_feat=4, num_block=1, upscale=2).state_dict()}, tmp_path / 'rep.pth')
    profile(['--model', f'rep={options}:{tmp_path / "rep.pth"}', '--input-size', '3x16x16', '--skip', 'runtime',
             'memory', '--json', str(tmp_path / 'report.json')])
    assert 'deployed form (PlainConvSR' in capsys.readouterr().err
    report = json.loads((tmp_path / 'report.json').read_text())
    # RepSR(num_block=1) trains 3 blocks of several convs each (ECB: 1x1-3x3 pairs, edge filters); deployed: 3 convs
    assert report['results']['rep']['ops']['counted']['num_conv'] == 3


def test_mmagic_teacher_converts_and_its_student_gets_a_distillation_config(tmp_path, repo_root):
    """An MMagic EDSRNet teacher: the plain network's config is a python config that builds and loads the plain
    checkpoint; init writes a MemSRDistillEditor config with the student, the teacher and their files."""
    pytest.importorskip('memsr_plugin.mmagic.conversion')
    from mmagic.models.editors.edsr.edsr_net import EDSRNet

    from effsr_core.mmagic.build import read_config

    torch.manual_seed(0)
    net = EDSRNet(3, 3, 8, 2, 4).eval()
    config = tmp_path / 'teacher.py'
    config.write_text("model = dict(type='BaseEditModel', generator=dict(type='EDSRNet', in_channels=3, "
                      "out_channels=3, mid_channels=8, num_blocks=2, upscale_factor=4))\n")
    checkpoint = tmp_path / 'teacher.pth'
    torch.save({'state_dict': {'generator.' + k: v for k, v in net.state_dict().items()}}, checkpoint)
    assert convert_command.main(['-opt', str(config), '--checkpoint', str(checkpoint), '--output',
                                 str(tmp_path / 'plain')]) == 0
    plain = build_model_from_options(tmp_path / 'plain' / 'teacher_plain.py', tmp_path / 'plain' / 'teacher_plain.pth')
    x = torch.rand(1, 3, 9, 7)
    bound = json.loads((tmp_path / 'plain' / 'teacher_plain.json').read_text())['check']['bound']
    with torch.no_grad():  # EDSRNet works at the image's scale: float32 carries C = 1000 at 2^-14 relative
        reference = net.double()(x.double())
        assert (plain(x).double() - reference).abs().max() / reference.abs().max() <= bound
    net.float()

    template = repo_root / 'options/mmagic/memsr/memsr_distill_x4_tiny_offline.py'
    init_command.main(['-opt', str(config), '--checkpoint', str(checkpoint), '--widths', '6', '--samples', '4',
                       '--patch', '12', '--output', str(tmp_path / 'init'), '--distill-options', str(template)])
    written = read_config(tmp_path / 'init' / 'memsr_distill_x4_tiny_offline.py')
    content = torch.load(tmp_path / 'init' / 'student_init.pth', weights_only=True)
    assert written.model.type == 'MemSRDistillEditor'
    assert dict(written.model.generator) == {'type': 'PlainConvSR', **content['student']}
    assert written.model.teacher.mid_channels == 8 and written.model.teacher_checkpoint == str(checkpoint)
    assert written.model.distill.init_file == str(tmp_path / 'init' / 'student_init.pth')
    assert written.train_cfg == read_config(template).train_cfg
