"""MemSR's exact conversion: every merge against the unmerged modules (float64, full outputs, borders included),
the toolboxes' EDSR / MSRResNet / EDSRNet against their plain forms, the float32 bound in C, refusals naming the
module, and the re-parameterisable blocks."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from memsr_plugin.archs import EDSRPixelShuffle, body_length
from memsr_plugin.conversion import (ECB, RRRB, Act, Conv, Conv3XC, NotConvertibleError, Parallel, PlainConvSR,
                                     RepSR, compile_nodes, convert, export, residual)
from memsr_plugin.conversion import merges as m
from memsr_plugin.conversion.equivalence import feature_scale, measure_equivalence

TOLERANCE = 1e-9


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def _conv(cin, cout, k, seed):
    torch.manual_seed(seed)
    return nn.Conv2d(cin, cout, k, padding=k // 2).double()


def _shifted(channels=3, seed=0, offset=50.0, size=(7, 9)):
    """Images with a large offset: where zero padding differs most from a shifted input."""
    g = torch.Generator().manual_seed(seed)
    return offset + torch.rand(2, channels, *size, generator=g, dtype=torch.float64)


# ---------------------------------------------------------------- the merges, one by one

def test_parallel_convs_same_input_concatenated_and_summed():
    a, b, x = _conv(4, 3, 3, 0), _conv(4, 5, 1, 1), _shifted(4)
    assert _relative(m.apply(m.concat_outputs(m.from_conv(a), m.from_conv(b)), x), torch.cat([a(x), b(x)], 1)) \
        < TOLERANCE
    c = _conv(4, 3, 1, 2)
    assert _relative(m.apply(m.sum_outputs(m.from_conv(a), m.from_conv(c)), x), a(x) + c(x)) < TOLERANCE


def test_parallel_convs_different_inputs_block_diagonal():
    a, b, x, z = _conv(2, 3, 1, 0), _conv(4, 5, 3, 1), _shifted(2), _shifted(4, seed=1)
    merged = m.block_diagonal(m.from_conv(a), m.from_conv(b))
    assert _relative(m.apply(merged, torch.cat([x, z], 1)), torch.cat([a(x), b(z)], 1)) < TOLERANCE


def test_pointwise_after_a_conv_composes_exactly():
    a, t, x = _conv(3, 4, 3, 0), _conv(4, 2, 1, 1), _shifted()
    assert _relative(m.apply(m.then_pointwise(m.from_conv(a), m.from_conv(t)), x), t(a(x))) < TOLERANCE


def test_lemma_3_1_is_exact_at_the_borders_and_naive_folding_is_not():
    a, b, x = _conv(3, 4, 1, 0), _conv(4, 5, 3, 1), _shifted()
    merged = m.lemma_3_1(m.from_conv(a), m.from_conv(b))
    expected = b(a(x))
    assert merged.ones is not None and not m.ones_is_central(merged)
    assert _relative(m.apply(merged, x), expected) < TOLERANCE
    naive = m.apply(m.fold_ones(merged, ones_padded_with_ones=True), x)  # the 1x1 bias folded into b's bias
    interior = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    assert _relative(naive[interior], expected[interior]) < TOLERANCE
    assert _relative(naive, expected) > 1e-3  # wrong exactly where b zero-pads a's output
    with pytest.raises(NotConvertibleError, match='non-centre'):
        m.fold_ones(merged)


def test_bias_as_a_constant_channel_and_its_fold():
    a, x = _conv(3, 4, 3, 0), _shifted()
    moved = m.bias_to_ones(m.from_conv(a))
    assert moved.bias.abs().max() == 0 and m.ones_is_central(moved)
    assert _relative(m.apply(moved, x), a(x)) < TOLERANCE
    assert _relative(m.apply(m.fold_ones(moved), x), a(x)) < TOLERANCE


def test_skip_add_as_a_1x1_conv():
    x, y = _shifted(4), _shifted(4, seed=1)
    add = m.add_as_conv(4, (0.3, 1.0))
    assert _relative(m.apply(add, torch.cat([y, x], 1)), 0.3 * y + x) < TOLERANCE
    assert _relative(m.apply(m.identity(4), x), x) < TOLERANCE


class _Residual(nn.Module):
    """x + s * conv2(relu(conv1(x))) followed by a conv: the skip must cross the ReLU."""

    def __init__(self, channels=4, res_scale=0.5):
        super().__init__()
        self.conv1, self.conv2, self.res_scale = _conv(channels, channels, 3, 0), _conv(channels, channels, 3, 1), \
            res_scale
        self.tail = _conv(channels, 12, 3, 2)

    def forward(self, x):
        return F.pixel_shuffle(self.tail(x + self.res_scale * self.conv2(F.relu(self.conv1(x)))), 2)


@pytest.mark.parametrize('offset', [10.0, 1e3])
def test_skip_carried_through_relu_by_the_constant_is_exact_above_minus_c(offset):
    net = _Residual()
    plain = convert(net, offset=offset, dtype=torch.float64)
    assert plain.acts[:2] == ['relu', 'identity'] and not plain.input_ones
    x = _shifted(4, offset=-0.9 * offset)  # skipped values just above -C
    assert _relative(plain(x), net(x)) < TOLERANCE
    below = _shifted(4, offset=-1.5 * offset)  # below -C the ReLU clips the carried skip: no longer equal
    assert _relative(plain(below), net(below)) > 1e-3


def test_a_constant_channel_that_reaches_zero_padding_is_emitted_by_the_previous_layer_not_concatenated():
    net = nn.Sequential(_conv(3, 4, 3, 0), nn.ReLU(), _conv(4, 6, 1, 1), _conv(6, 12, 3, 2), nn.PixelShuffle(2))
    plain = convert(net, dtype=torch.float64)
    assert not plain.input_ones and plain.widths == [5, 12]  # 4 features + the ones channel
    assert plain.convs()[1].in_channels == 5
    x = _shifted()
    assert _relative(plain(x), net(x)) < TOLERANCE


def test_parallel_branches_of_different_depths_with_a_relu_on_one_side():
    a, b1, b2 = _conv(4, 4, 3, 0), _conv(4, 4, 1, 1), _conv(4, 4, 3, 2)
    node = Parallel([[Conv(a, 'a'), Act('relu')], [Conv(b1, 'b1'), Conv(b2, 'b2')]], [1.0, -0.5], 'fork')
    plain = export(compile_nodes([node, Conv(_conv(4, 4, 3, 3), 'tail')], 4), 4, dtype=torch.float64)
    x = _shifted(4, offset=-3.0)
    expected = _conv(4, 4, 3, 3)(F.relu(a(x)) - 0.5 * b2(b1(x)))
    assert _relative(plain(x), expected) < TOLERANCE


# ---------------------------------------------------------------- toolbox networks

basicsr_conversion = pytest.importorskip('memsr_plugin.basicsr.conversion')
from basicsr.archs.edsr_arch import EDSR  # noqa: E402
from basicsr.archs.srresnet_arch import MSRResNet  # noqa: E402


def _inputs():
    return [_shifted(offset=0.0), torch.full((1, 3, 6, 7), 0.95, dtype=torch.float64),
            0.8 + 0.2 * _shifted(offset=0.0, size=(5, 11))]


def _check(net, offset=1e3, **kwargs):
    net = net.double().eval()
    plain = convert(net, offset=offset, dtype=torch.float64, **kwargs)
    assert isinstance(plain, PlainConvSR)
    assert all(isinstance(layer, (nn.Conv2d, nn.ReLU, nn.LeakyReLU, nn.PixelShuffle)) for layer in plain.body)
    with torch.no_grad():
        for x in _inputs():
            assert _relative(plain(x), net(x)) < TOLERANCE
    return plain


@pytest.mark.parametrize('num_feat,num_block,upscale,res_scale', [(8, 2, 2, 1.0), (6, 3, 3, 0.1), (4, 1, 4, 0.5),
                                                                  (5, 0, 2, 1.0)])
def test_basicsr_edsr(num_feat, num_block, upscale, res_scale):
    torch.manual_seed(num_feat)
    plain = _check(EDSR(3, 3, num_feat, num_block, upscale, res_scale=res_scale))
    # the mean shift is merged into conv_first by Lemma 3.1: one ones channel on the input, none in the body
    assert plain.input_ones and plain.convs()[0].in_channels == 4
    assert len(plain.convs()) == 2 * num_block + 3 + (2 if upscale == 4 else 1)  # one conv per original conv


@pytest.mark.parametrize('upscale,res_scale', [(2, 1.0), (3, 0.1), (4, 0.5)])
def test_paper_teacher_with_a_one_conv_pixel_shuffle_upsampler(upscale, res_scale):
    torch.manual_seed(upscale)
    plain = _check(EDSRPixelShuffle(num_feat=6, num_block=2, upscale=upscale, res_scale=res_scale))
    assert plain.widths[-1] == 3 * upscale ** 2 and plain.shuffles[-1] == upscale  # de-normalised before shuffling


@pytest.mark.parametrize('upscale', [2, 3, 4])
def test_basicsr_msrresnet(upscale):
    torch.manual_seed(upscale)
    plain = _check(MSRResNet(3, 3, 6, 2, upscale))
    assert plain.base_upscale == upscale and not plain.input_ones and 'lrelu' in plain.acts


@pytest.mark.parametrize('upscale,res_scale', [(2, 1.0), (3, 0.1), (4, 0.5)])
def test_mmagic_edsrnet(upscale, res_scale):
    _check(_edsrnet(upscale, res_scale))


def _edsrnet(upscale, res_scale):
    pytest.importorskip('memsr_plugin.mmagic.conversion')
    from mmagic.models.editors.edsr.edsr_net import EDSRNet
    torch.manual_seed(upscale)
    return EDSRNet(3, 3, 6, 2, upscale, res_scale=res_scale, rgb_std=[0.5, 1.0, 2.0])


@pytest.mark.parametrize('build', [lambda: EDSR(3, 3, 8, 2, 2), lambda: EDSR(3, 3, 6, 3, 4, res_scale=0.5),
                                   lambda: _edsrnet(3, 0.1), lambda: _edsrnet(4, 1.0)],
                         ids=['basicsr-edsr-x2', 'basicsr-edsr-x4', 'mmagic-edsrnet-x3', 'mmagic-edsrnet-x4'])
def test_relu_body_form_is_exact_with_a_relu_after_every_body_conv(build):
    """The paper's form (Fig. 3): conv + ReLU in every body layer; the default form keeps its block outputs
    without an activation; subtracting ``feature_offsets`` from the paper's features gives the default ones."""
    torch.manual_seed(0)
    net = build()
    paper, default = _check(net, relu_body=True), _check(net)
    body = body_length(paper.shuffles)
    assert body == len(paper.widths) - (3 if paper.shuffles.count(2) == 2 else 2)  # upsampler: shuffles, conv_last
    assert paper.acts[:body] == ['relu'] * body and 'identity' in default.acts[:body]
    assert paper.acts[body:] == default.acts[body:] and default.feature_offsets[0].abs().max() == 0
    x = _inputs()[0]
    with torch.no_grad():
        _, with_c = paper(x, return_features=True)
        _, plain = default(x, return_features=True)
    assert len(with_c) == len(plain) and paper.widths[0] == default.widths[0] + 1  # the first emits ones
    for i, (a, b, offsets, b_offsets) in enumerate(zip(with_c, plain, paper.feature_offsets,
                                                       default.feature_offsets)):
        assert a.shape[1] == offsets.numel() >= b.shape[1] == b_offsets.numel(), i
        if i < body and paper.acts[i] != default.acts[i]:
            assert offsets[:b.shape[1]].eq(1e3).all()  # carried through the new ReLU by C
        read_back = a - offsets[None, :, None, None]
        assert _relative(read_back[:, :b.shape[1]], b - b_offsets[None, :, None, None]) < TOLERANCE, i
        assert read_back[:, b.shape[1]:].eq(0).all()  # an emitted ones channel, if any


@pytest.mark.parametrize('build', [lambda: EDSR(3, 3, 16, 4, 2), lambda: EDSR(3, 3, 8, 2, 4),
                                   lambda: _edsrnet(2, 1.0), lambda: _edsrnet(4, 0.5)],
                         ids=['EDSR 16x4 x2', 'EDSR 8x2 x4', 'EDSRNet x2', 'EDSRNet x4'])
@pytest.mark.parametrize('relu_body', [False, True], ids=['own activations', 'relu body'])
def test_float32_error_grows_with_c_and_stays_within_the_bound(build, relu_body):
    """float32: carried values are stored as ``x + C`` and round at C 2^-24 (relative to the image scale ``s``
    the network works at), once per layer; the stated bound holds at C = 1e3 and 1e5 on offset and plain inputs,
    and the error grows with C while float64 stays exact."""
    torch.manual_seed(0)
    net = build().eval()
    for x in (0.7 + 0.2 * torch.rand(1, 3, 16, 16, dtype=torch.float64), torch.rand(2, 3, 24, 24, dtype=torch.float64)):
        checks = {c: measure_equivalence(net, convert(net, offset=c, dtype=torch.float64, relu_body=relu_body),
                                         convert(net, offset=c, relu_body=relu_body), x, c) for c in (1e3, 1e5)}
        for check in checks.values():
            assert check.float64 < TOLERANCE and check.float32 <= check.bound, check.describe()
        assert checks[1e5].float32 > 10 * checks[1e3].float32


def test_feature_scale_is_the_input_normalisation():
    assert feature_scale(EDSR(3, 3, 4, 1, 2)) == 255.0
    assert feature_scale(_edsrnet(2, 1.0)) == 0.5  # rgb_std (0.5, 1, 2): the smallest factor 1 / 2
    assert feature_scale(MSRResNet(3, 3, 4, 1, 2)) == 1.0


# ---------------------------------------------------------------- refusals

class _Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return x * torch.sigmoid(self.conv(x))


class _Intersecting(nn.Module):
    def __init__(self):
        super().__init__()
        self.f, self.g, self.h = (nn.Conv2d(4, 4, 3, padding=1) for _ in range(3))

    def forward(self, x):
        z1 = self.f(x)
        z2 = self.g(z1) + x
        return self.h(z2) + z1


def _wrapped(module):
    return nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.Sequential(nn.ReLU(), module))


@pytest.mark.parametrize('module,name,why', [
    (_Attention(), '1.1', 'mul'),
    (_Intersecting(), '1.1', 'intersecting'),
    (nn.Conv2d(4, 4, 2, padding=1), '1.1', 'not odd'),
    (nn.Conv2d(4, 4, 3, padding=2, dilation=2), '1.1', 'dilation'),
    (nn.Conv2d(4, 4, 3, padding=1, groups=2), '1.1', 'groups'),
    (nn.BatchNorm2d(4), '1.1', 'BatchNorm2d'),
    (nn.Upsample(scale_factor=2), '1.1', 'Upsample'),
], ids=['attention', 'intersecting-skips', 'even-kernel', 'dilation', 'grouped', 'unknown-module', 'interpolation'])
def test_unconvertible_topologies_are_refused_naming_the_module(module, name, why):
    with pytest.raises(NotConvertibleError, match=why) as error:
        convert(_wrapped(module))
    assert str(error.value).startswith(name)


def test_residual_helper_and_different_branch_widths_are_refused():
    node = Parallel([[Conv(_conv(4, 5, 3, 0), 'wide')], []], [1.0, 1.0], 'block')
    with pytest.raises(NotConvertibleError, match='block: branches with different channel counts'):
        compile_nodes([node], 4)
    assert residual([], 0.5).scales == [0.5, 1.0]


# ---------------------------------------------------------------- re-parameterisable blocks

@pytest.mark.parametrize('block', [lambda: ECB(4, 4), lambda: ECB(4, 6, 1.5), lambda: RRRB(4), lambda: Conv3XC(4, 5)],
                         ids=['ecb-identity', 'ecb', 'rrrb', 'conv3xc'])
def test_reparam_block_merges_into_one_conv(block):
    torch.manual_seed(0)
    module = block().double()
    for p in module.parameters():
        nn.init.normal_(p, std=0.3)
    x = _shifted(4)
    plain = module.to_plain()
    assert isinstance(plain, nn.Conv2d) and plain.kernel_size == (3, 3)
    with torch.no_grad():
        assert _relative(plain(x), module(x)) < TOLERANCE


@pytest.mark.parametrize('block', ['ecb', 'rrrb', 'conv3xc'])
def test_repsr_deploys_as_a_plain_network(block):
    torch.manual_seed(0)
    net = RepSR(3, 3, 6, 2, 3, block).double()
    plain = net.to_plain()
    assert isinstance(plain, PlainConvSR) and len(plain.convs()) == 4
    x = _shifted(offset=0.5)
    with torch.no_grad():
        assert _relative(plain(x), net(x)) < TOLERANCE


def test_plain_conv_sr_rejects_inconsistent_layers():
    with pytest.raises(ValueError, match='acts has 1 entries for 2 layers'):
        PlainConvSR(3, [4, 12], acts=['relu'])
    with pytest.raises(ValueError, match='not divisible'):
        PlainConvSR(3, [4, 10], shuffles=[1, 2])


def test_plain_network_returns_the_output_of_every_layer():
    from memsr_plugin.archs import PlainConvSR

    torch.manual_seed(0)
    net = PlainConvSR(3, [8, 6, 12], acts=['relu', 'identity', 'relu'], shuffles=[1, 1, 2]).eval()
    x = torch.rand(1, 3, 5, 5)
    out, features = net(x, return_features=True)
    convs = net.convs()
    assert len(features) == len(convs) and torch.equal(features[-1], out) and torch.equal(out, net(x))
    assert torch.equal(features[0], torch.relu(convs[0](x)))
    assert torch.equal(features[1], convs[1](features[0]))
    assert torch.equal(features[2], torch.nn.functional.pixel_shuffle(torch.relu(convs[2](features[1])), 2))
