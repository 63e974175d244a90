"""MemSR's winning initialisation (Alg. 1, Eq. 5-11, Sec. 3.5): the decomposition and the least-squares fit
against their definitions, full-rank reproduction, errors against width, the theta search, the command on BasicSR
and MMagic checkpoints, and refusals. Small deterministic networks, CPU, float64."""
import json

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from memsr_plugin.conversion import PlainConvSR, convert
from memsr_plugin.init import main
from memsr_plugin.winning_init import (InitSettings, LayerSpectrum, fit_conv, sample_inputs,
                                       winning_initialisation)

basicsr_conversion = pytest.importorskip('memsr_plugin.basicsr.conversion')
from basicsr.archs.edsr_arch import EDSR  # noqa: E402

SAMPLES, PATCH = 4, 12


def _settings(**given):
    return InitSettings.check(**{'samples': SAMPLES, 'patch': PATCH, **given})


def _edsr(num_feat=8, num_block=2, upscale=2, seed=0):
    torch.manual_seed(seed)
    return EDSR(3, 3, num_feat, num_block, upscale).eval()


@pytest.fixture(scope='module')
def teacher():
    """The paper's plain form of a small EDSR x2 (8 features, 2 blocks): 6 body layers, then the upsampler."""
    return convert(_edsr(), dtype=torch.float64, relu_body=True)


def _teacher_features(teacher, layer, seed=0):
    with torch.no_grad():
        _, features = teacher(sample_inputs(3, SAMPLES, PATCH, seed), return_features=True)
    return features[layer]


# ---------------------------------------------------------------- Alg. 1, one layer

def test_decomposition_follows_alg_1_and_is_exact_at_full_rank(teacher):
    features = _teacher_features(teacher, 2)
    spectrum = LayerSpectrum(features, teacher.feature_offsets[2])
    channels = features.shape[1]
    errors = [spectrum.decompose(r).error for r in range(1, channels + 1)]
    assert errors == pytest.approx(spectrum.truncation_errors(), abs=1e-12)  # Eq. 15 = dropped singular values
    assert all(a >= b for a, b in zip(errors, errors[1:])) and errors[0] > 0.1 > errors[-1]
    assert errors[-1] < 1e-12  # full rank: M * F_S = F_T
    unshifted, shifted = spectrum.decompose(4, beta=0.0), spectrum.decompose(4, beta=3.0)
    rows = unshifted.student.transpose(0, 1).reshape(4, -1)
    assert rows.mean(dim=1).abs().max() < 1e-9  # F_S = S V^T of centred features
    gamma = torch.stack([-3.0 * row[row < 0].mean() for row in rows])
    assert torch.allclose(shifted.student, unshifted.student + gamma[None, :, None, None], atol=1e-12)
    assert torch.allclose(shifted.bias, unshifted.bias - unshifted.kernel @ gamma, atol=1e-9)  # folded into M
    assert torch.equal(shifted.kernel, spectrum.u[:, :4])


def test_the_constant_c_does_not_enter_eq_15(teacher):
    """Carried values hold x + C: Eq. 15's norm is taken without C, so the paper's and the default form of the
    same teacher give the same errors."""
    default = convert(_edsr(), dtype=torch.float64)
    paper = LayerSpectrum(_teacher_features(teacher, 2), teacher.feature_offsets[2])
    plain = LayerSpectrum(_teacher_features(default, 2), default.feature_offsets[2])
    assert paper.channels == plain.channels + 1  # the ones channel: constant, so the same singular values
    assert paper.truncation_errors() == pytest.approx(plain.truncation_errors() + [0.0], rel=1e-6, abs=1e-12)
    blind = LayerSpectrum(_teacher_features(teacher, 2))  # with C in the norm every width would pass
    assert blind.truncation_errors()[0] < paper.truncation_errors()[0] / 10


def test_least_squares_recovers_a_conv_borders_included():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 5, 3, padding=1).double()
    x = torch.rand(3, 4, 7, 6, dtype=torch.float64)
    params = fit_conv(x, conv(x).detach(), 3)
    assert torch.allclose(params.weight, conv.weight, atol=1e-9) and torch.allclose(params.bias, conv.bias, atol=1e-9)


# ---------------------------------------------------------------- the whole student

def test_full_rank_student_reproduces_a_teacher_it_can_represent():
    """A teacher that a plain ReLU student can represent exactly at full rank (linear, 1x1 kernels so zero
    padding plays no part, and a mean shift large enough that no student ReLU clips): the student's output
    equals the teacher's; below full rank it does not."""
    torch.manual_seed(0)
    linear = PlainConvSR(3, [6, 5, 12], kernel_sizes=1, acts='identity', shuffles=[1, 1, 2]).double()
    full = winning_initialisation(linear, _settings(widths=[6, 5], beta=100.0), dtype=torch.float64)
    assert full.errors == pytest.approx([0.0, 0.0], abs=1e-12) and full.output_error < 1e-9
    x = sample_inputs(3, 2, 5, seed=7)  # other inputs than the fitted samples
    with torch.no_grad():
        assert ((full.student(x) - linear(x)).norm() / linear(x).norm()) < 1e-9
    low = winning_initialisation(linear, _settings(widths=[2, 2], beta=100.0))
    assert low.output_error > 1e-3 and min(low.errors) > 1e-3


def test_edsr_errors_fall_as_widths_grow(teacher):
    """Eq. 15 errors fall with the width and vanish at full rank; the student's output error falls too. At full
    rank the student is close to the teacher away from the borders (its ReLUs act on the rotated features and it
    pads its own features with zeros, so it is not exact there: measured 1.3% inside, 6% on the whole image)."""
    channels = teacher.widths[:6]
    results = {w: winning_initialisation(teacher, _settings(widths=[min(w, c) for c in channels], patch=24))
               for w in (2, 5, max(channels))}
    for narrow, wide in ((2, 5), (5, max(channels))):
        assert all(a > b for a, b in zip(results[narrow].errors, results[wide].errors))
        assert results[narrow].output_error > results[wide].output_error
    x = sample_inputs(3, 2, 40, seed=5)  # held-out inputs
    inside = (slice(None), slice(None), slice(16, -16), slice(16, -16))  # 8 input pixels from the border
    with torch.no_grad():
        reference = teacher(x)[inside]
        interior = {w: float((r.student(x.float())[inside].double() - reference).norm() / reference.norm())
                    for w, r in results.items()}
    assert interior[max(channels)] < 0.03 and interior[max(channels)] < interior[2] / 3
    full = results[max(channels)]
    assert max(full.errors) < 1e-12
    assert full.layers == list(range(6)) and full.widths == channels
    student = full.student
    assert student.widths == teacher.widths and student.acts == ['relu'] * 6 + teacher.acts[6:]
    assert student.input_ones == teacher.input_ones and student.shuffles == teacher.shuffles
    assert [tuple(a['weight'].shape) for a in full.adapters] == [(c, c, 1, 1) for c in channels]
    narrow = results[2]
    assert [tuple(a['weight'].shape) for a in narrow.adapters] == [(c, 2, 1, 1) for c in channels]
    assert narrow.student.convs()[6].in_channels == 2  # the upsampler reads the student through the last M


def test_upsampler_is_the_teachers_composed_with_the_last_adapter(teacher):
    result = winning_initialisation(teacher, _settings(widths=[4]), dtype=torch.float64)
    adapter = result.adapters[-1]
    t_up, s_up = teacher.convs()[6], result.student.convs()[6]
    composed = torch.einsum('ojkl,ji->oikl', t_up.weight, adapter['weight'][:, :, 0, 0])
    assert torch.allclose(s_up.weight, composed, atol=1e-12)
    assert torch.allclose(s_up.bias, t_up.bias + torch.einsum('ojkl,j->o', t_up.weight, adapter['bias']), atol=1e-9)
    assert torch.equal(result.student.convs()[7].weight, teacher.convs()[7].weight)  # conv_last copied


@pytest.mark.parametrize('theta', [0.05, 0.14, 0.3])
def test_theta_gives_the_smallest_width_meeting_it(teacher, theta):
    result = winning_initialisation(teacher, _settings(theta=theta))
    for layer, width, error in zip(result.layers, result.widths, result.errors):
        spectrum = LayerSpectrum(_teacher_features(teacher, layer), teacher.feature_offsets[layer])
        assert error <= theta and spectrum.decompose(width).error == pytest.approx(error)
        if width > 1:
            assert spectrum.decompose(width - 1).error > theta, (layer, width)
    assert result.student.widths[:6] == result.widths


def test_initialisation_is_deterministic(teacher):
    a, b = (winning_initialisation(teacher, _settings(theta=0.14, seed=3)) for _ in range(2))
    assert a.widths == b.widths and a.errors == b.errors
    assert all(torch.equal(p, q) for p, q in zip(a.student.state_dict().values(), b.student.state_dict().values()))


# ---------------------------------------------------------------- refusals

@pytest.mark.parametrize('kwargs,match', [
    ({'theta': 0.0}, 'theta=0.0 is outside'), ({'theta': 1.0}, 'theta=1.0 is outside'),
    ({'theta': -0.1}, 'theta=-0.1 is outside'), ({}, 'exactly one of widths'),
    ({'theta': 0.1, 'widths': [4]}, 'exactly one of widths'), ({'widths': [4, 4]}, 'widths has 2 entries'),
    ({'widths': [4, 0]}, r'widths=\[4, 0\]'), ({'widths': [100]}, 'widths above'),
    ({'theta': 0.1, 'samples': 0}, 'samples=0'), ({'theta': 0.1, 'beta': -1.0}, 'beta=-1.0'),
])
def test_bad_settings_are_refused_naming_the_option(teacher, kwargs, match):
    with pytest.raises(ValueError, match=match):
        winning_initialisation(teacher, InitSettings.check(**kwargs))


def test_settings_are_checked_once_into_one_immutable_object():
    for theta in (0.05, 0.14):
        assert InitSettings.check(theta=theta).theta == theta
    settings = InitSettings.check(widths=[64] * 34)
    assert settings.widths == (64,) * 34 and settings.theta is None and settings.beta == 3.0
    with pytest.raises(AttributeError):
        settings.theta = 0.5  # frozen: what was checked stays as it was
    with pytest.raises(ValueError, match=r'theta=1.05 is outside .*\(0, 1\).*the paper uses 0.05 or 0.14'):
        InitSettings.check(theta=1.05)  # the message says what is allowed, from the declaration
    with pytest.raises(TypeError, match='unknown setting.*thetta'):
        InitSettings.check(thetta=0.1)


def test_the_result_widths_are_the_students_and_its_adapters(teacher):
    result = winning_initialisation(teacher, _settings(theta=0.14))
    assert result.widths == [adapter['weight'].shape[1] for adapter in result.adapters]
    assert all(width <= channels for width, channels in zip(result.widths, teacher.widths))
    assert result.settings == _settings(theta=0.14)


# ---------------------------------------------------------------- the command

def _run(capsys, *argv):
    result = main([str(a) for a in argv])
    return result, capsys.readouterr().out


def _check_output(folder, result, layers):
    content = torch.load(folder / 'student_init.pth', weights_only=True)
    assert set(content) == {'params', 'student', 'adapters', 'layers', 'teacher_form', 'widths', 'errors'}
    student = PlainConvSR(**content['student'])
    student.load_state_dict(content['params'])
    x = sample_inputs(3, 1, 6, seed=1).float()
    with torch.no_grad():
        assert torch.equal(student(x), result.student(x))
    assert content['layers'] == list(range(layers)) == result.layers and content['widths'] == result.widths
    assert content['teacher_form'] == {'relu_body': True, 'offset': 1000.0}
    for adapter, width in zip(content['adapters'], content['widths']):
        assert adapter['weight'].shape[1:] == (width, 1, 1) and adapter['bias'].shape == adapter['weight'].shape[:1]
    summary = json.loads((folder / 'student_init.json').read_text())
    assert summary['widths'] == result.widths and summary['errors'] == pytest.approx(result.errors)
    assert summary['student'] == content['student']
    return content


def test_command_on_a_basicsr_edsr_checkpoint(tmp_path, capsys):
    from effsr_core.basicsr.build import build_network

    net = _edsr(num_feat=8, num_block=2, upscale=4)
    options = tmp_path / 'teacher.yml'
    options.write_text('network_g:\n  type: EDSR\n  num_in_ch: 3\n  num_out_ch: 3\n  num_feat: 8\n  num_block: 2\n'
                       '  upscale: 4\n')
    torch.save({'params': net.state_dict()}, tmp_path / 'teacher.pth')
    result, out = _run(capsys, '-opt', options, '--checkpoint', tmp_path / 'teacher.pth', '--theta', 0.14,
                       '--output', tmp_path / 'init', '--samples', SAMPLES, '--patch', PATCH, '--seed', 1)
    assert 'error' in out and 'upsampler' in out and all(f'{e:.3e}' in out for e in result.errors)
    content = _check_output(tmp_path / 'init', result, 6)
    assert all(e <= 0.14 for e in result.errors)
    built = build_network({'type': 'PlainConvSR', **content['student']})  # a BasicSR network_g
    built.load_state_dict(content['params'])
    assert isinstance(built, PlainConvSR)


def test_command_on_an_mmagic_edsrnet_checkpoint(tmp_path, capsys):
    pytest.importorskip('memsr_plugin.mmagic.conversion')
    from mmagic.models.editors.edsr.edsr_net import EDSRNet

    from effsr_core.mmagic.build import build_generator

    torch.manual_seed(0)
    net = EDSRNet(3, 3, 8, 2, 2)
    config = tmp_path / 'teacher.py'
    config.write_text("model = dict(type='BaseEditModel', generator=dict(type='EDSRNet', in_channels=3, "
                      "out_channels=3, mid_channels=8, num_blocks=2, upscale_factor=2))\n")
    torch.save({'state_dict': {'generator.' + k: v for k, v in net.state_dict().items()}}, tmp_path / 'teacher.pth')
    result, _ = _run(capsys, '-opt', config, '--checkpoint', tmp_path / 'teacher.pth', '--widths', 6,
                     '--output', tmp_path / 'init', '--samples', SAMPLES, '--patch', PATCH)
    content = _check_output(tmp_path / 'init', result, 6)
    assert content['widths'] == [6] * 6
    built = build_generator({'type': 'PlainConvSR', **content['student']})  # an MMagic generator
    built.load_state_dict(content['params'])


@pytest.mark.parametrize('argv,match', [(['--theta', '1.5'], 'theta=1.5 is outside'),
                                        (['--widths', '4', '4'], 'widths has 2 entries'),
                                        (['--theta', '0.1', '--widths', '4'], 'not allowed with argument')])
def test_command_refuses_bad_settings(tmp_path, capsys, argv, match):
    options = tmp_path / 'teacher.yml'
    options.write_text('network_g:\n  type: EDSR\n  num_in_ch: 3\n  num_out_ch: 3\n  num_feat: 4\n  num_block: 1\n'
                       '  upscale: 2\n')
    torch.save({'params': _edsr(4, 1, 2).state_dict()}, tmp_path / 'teacher.pth')
    with pytest.raises(SystemExit) as exit_:
        main(['-opt', str(options), '--checkpoint', str(tmp_path / 'teacher.pth'), '--output', str(tmp_path / 'o'),
              *argv])
    assert exit_.value.code == 2 and match in capsys.readouterr().err
    assert not (tmp_path / 'o' / 'student_init.pth').exists()


def test_stepwise_layers_match_the_forward(teacher):
    x = sample_inputs(3, 1, 5, seed=2)
    with torch.no_grad():
        out, features = teacher(x, return_features=True)
        step = teacher.prepare_input(x)
        for i, expected in enumerate(features):
            step = teacher.run_layer(i, step)
            assert torch.equal(step, expected)
    assert torch.equal(out, features[-1]) and F.relu(features[0]).equal(features[0])


# ---------------------------------------------------------------- widths the device runs well

def _blocks_of_four(call, backend):
    """A conv costs its channels padded to blocks of 4 (a deterministic staircase); other calls nothing."""
    from effsr_core.cost_model import conv_fields

    fields = conv_fields(call)
    if fields is None:
        return 1e-4
    padded = lambda c: -(-c // 4) * 4  # noqa: E731
    return 1e-6 * padded(fields['in_channels']) * padded(fields['out_channels']) * fields['height'] * fields['width']


def test_device_widths_move_each_dynamic_width_to_the_end_of_its_step(teacher, tmp_path):
    plain = winning_initialisation(teacher, _settings(theta=0.3))
    settings = _settings(theta=0.3, device_backend='eager-nchw', device_lr_size=[8, 8], device_step=1,
                         device_table=str(tmp_path / 'table.json'))
    on_device = winning_initialisation(teacher, settings, cost_timer=_blocks_of_four)
    assert plain.widths != on_device.widths  # the staircase moved some (a test that can fail)
    for layer, smallest, width, error in zip(on_device.layers, plain.widths, on_device.widths, on_device.errors):
        channels = teacher.widths[layer]
        assert width == min(channels, -(-smallest // 4) * 4), (layer, smallest, width)
        assert error <= 0.3  # wider never raises Eq. 15's error
    assert (tmp_path / 'table.json').is_file()


@pytest.mark.parametrize('kwargs,match', [
    ({'widths': [4], 'device_backend': 'eager-nchw'}, 'device_backend=eager-nchw moves dynamic widths'),
    ({'theta': 0.1, 'device_backend': 'tensorrt'},
     r"device_backend=tensorrt is outside the allowed values \(one of 'eager-nchw'"),
    ({'theta': 0.1, 'device_lr_size': [8]}, r'device_lr_size=\[8\] is not \(height, width\)'),
])
def test_bad_device_settings_are_refused_naming_the_option(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InitSettings.check(**kwargs)
