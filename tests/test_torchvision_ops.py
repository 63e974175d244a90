"""``torchvision.ops.deform_conv2d`` on the CPU: the plain-PyTorch operator of ``effsr_core.compat`` (or torchvision's
own where its C++ ops load) against ``conv2d``, shifted inputs and a slow reference, with gradients; and the models
that need it (BasicSR's EDVR and IconVSR)."""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import deform_conv2d

from effsr_core.compat.fixes import torchvision_ops


def _plain(input, offset, weight, bias=None, stride=1, padding=0, dilation=1, mask=None):
    """This project's implementation called directly, with ``torchvision.ops.deform_conv2d``'s arguments."""
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    taps = weight.shape[2] * weight.shape[3]
    bias = torch.zeros(weight.shape[0], dtype=input.dtype) if bias is None else bias
    return torchvision_ops.deform_conv2d(
        input, weight, offset, torch.zeros(1) if mask is None else mask, bias, *pair(stride), *pair(padding),
        *pair(dilation), input.shape[1] // weight.shape[1], offset.shape[1] // (2 * taps), mask is not None)


IMPLEMENTATIONS = {'torchvision.ops': deform_conv2d, 'plain': _plain}


@pytest.fixture(params=list(IMPLEMENTATIONS))
def deform(request):
    return IMPLEMENTATIONS[request.param]


def _reference(input, offset, weight, bias, stride, padding, dilation, mask):
    """One output value at a time: bilinear samples (zero outside the input) at the offset positions, times the
    mask, times the weight; offsets are (dy, dx) pairs per offset group and tap, taps in row-major order."""
    batch, channels, height, width = input.shape
    out_channels, group_channels, kh, kw = weight.shape
    taps = kh * kw
    out_h, out_w = offset.shape[-2:]
    groups = channels // group_channels
    offset_groups = offset.shape[1] // (2 * taps)

    def pixel(b, c, y, x):
        return input[b, c, y, x].item() if 0 <= y < height and 0 <= x < width else 0.0

    def bilinear(b, c, y, x):
        y0, x0 = math.floor(y), math.floor(x)
        fy, fx = y - y0, x - x0
        return ((1 - fy) * (1 - fx) * pixel(b, c, y0, x0) + (1 - fy) * fx * pixel(b, c, y0, x0 + 1)
                + fy * (1 - fx) * pixel(b, c, y0 + 1, x0) + fy * fx * pixel(b, c, y0 + 1, x0 + 1))

    out = torch.zeros(batch, out_channels, out_h, out_w, dtype=torch.float64)
    for b, o, oy, ox in itertools.product(range(batch), range(out_channels), range(out_h), range(out_w)):
        group = o // (out_channels // groups)
        total = bias[o].item()
        for ci, i, j in itertools.product(range(group_channels), range(kh), range(kw)):
            c = group * group_channels + ci
            tap = c // (channels // offset_groups) * taps + i * kw + j  # offset group, then tap in row-major order
            y = oy * stride[0] - padding[0] + i * dilation[0] + offset[b, 2 * tap, oy, ox].item()
            x = ox * stride[1] - padding[1] + j * dilation[1] + offset[b, 2 * tap + 1, oy, ox].item()
            total += weight[o, ci, i, j].item() * mask[b, tap, oy, ox].item() * bilinear(b, c, y, x)
        out[b, o, oy, ox] = total
    return out


def test_zero_offsets_and_unit_mask_are_a_convolution(deform):
    torch.manual_seed(0)
    x, weight, bias = torch.randn(2, 4, 9, 8), torch.randn(6, 2, 3, 3), torch.randn(6)
    settings = dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1))
    expected = F.conv2d(x, weight, bias, groups=2, **settings)
    offset = torch.zeros(2, 2 * 2 * 9, *expected.shape[-2:])  # two offset groups
    torch.testing.assert_close(deform(x, offset, weight, bias, mask=torch.ones(2, 2 * 9, *expected.shape[-2:]),
                                      **settings), expected)
    torch.testing.assert_close(deform(x, offset, weight, bias, **settings), expected)  # no mask: DCNv1


def test_integer_offsets_are_a_convolution_of_the_shifted_input(deform):
    torch.manual_seed(0)
    x, weight = torch.randn(1, 4, 7, 6), torch.randn(5, 4, 3, 3)
    shifts = [(1, -2), (0, 3)]  # (dy, dx) of offset groups 0 (channels 0-1) and 1 (channels 2-3)
    offset = torch.cat([torch.tensor(shift, dtype=torch.float32).repeat(9) for shift in shifts])
    offset = offset.view(1, 36, 1, 1).expand(1, 36, 7, 6)
    # The conv's zero padding comes first: shifted[y, x] = padded[y + dy, x + dx], zeros past the border.
    padded = F.pad(x, (1, 1, 1, 1))
    shifted = torch.zeros_like(padded)
    for group, (dy, dx) in enumerate(shifts):
        channels = slice(2 * group, 2 * group + 2)
        wide = F.pad(padded[:, channels], (4, 4, 4, 4))
        shifted[:, channels] = wide[:, :, 4 + dy:4 + dy + 9, 4 + dx:4 + dx + 8]
    torch.testing.assert_close(deform(x, offset, weight, padding=1), F.conv2d(shifted, weight),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('groups, offset_groups', [(1, 1), (2, 1), (1, 2), (2, 4)])
def test_fractional_offsets_match_the_slow_reference(deform, groups, offset_groups):
    torch.manual_seed(0)
    x = torch.randn(1, 4, 5, 6, dtype=torch.float64)
    weight, bias = torch.randn(2 * groups, 4 // groups, 3, 2, dtype=torch.float64), torch.randn(2 * groups,
                                                                                                 dtype=torch.float64)
    settings = dict(stride=(1, 2), padding=(1, 1), dilation=(2, 1))
    out_shape = F.conv2d(x, weight, groups=groups, **settings).shape[-2:]
    offset = 3 * torch.randn(1, 2 * offset_groups * 6, *out_shape, dtype=torch.float64)  # some samples fall outside
    mask = torch.rand(1, offset_groups * 6, *out_shape, dtype=torch.float64)
    expected = _reference(x, offset, weight, bias, settings['stride'], settings['padding'], settings['dilation'], mask)
    torch.testing.assert_close(deform(x, offset, weight, bias, mask=mask, **settings), expected)


def test_gradients_match_finite_differences(deform):
    torch.manual_seed(0)
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(2, dtype=torch.float64, requires_grad=True)
    # Fractional parts in (0.1, 0.9): away from the kinks of bilinear sampling at whole pixels.
    whole = torch.randint(-2, 2, (1, 2 * 2 * 9, 4, 4)).double()  # two offset groups
    offset = (whole + 0.1 + 0.8 * torch.rand(whole.shape, dtype=torch.float64)).requires_grad_()
    mask = torch.rand(1, 2 * 9, 4, 4, dtype=torch.float64, requires_grad=True)
    function = lambda *args: deform(args[0], args[1], args[2], args[3], padding=1, mask=args[4])  # noqa: E731
    assert torch.autograd.gradcheck(function, (x, offset, weight, bias, mask))


def test_inconsistent_shapes_are_refused_with_the_sizes():
    x, weight = torch.randn(1, 4, 6, 6), torch.randn(3, 4, 3, 3)
    with pytest.raises(RuntimeError, match=r'offset \(1, 18, 6, 6\) should be \(1, 18, 4, 4\)'):
        torchvision_ops.deform_conv2d(x, weight, torch.zeros(1, 18, 6, 6), torch.zeros(1), torch.zeros(3),
                                      1, 1, 0, 0, 1, 1, 1, 1, False)
    with pytest.raises(RuntimeError, match='cannot be split into 3 offset groups'):
        torchvision_ops.deform_conv2d(x, weight, torch.zeros(1, 54, 4, 4), torch.zeros(1), torch.zeros(3),
                                      1, 1, 0, 0, 1, 1, 1, 3, False)


def test_meta_tensors_give_the_output_shape():
    with torch.device('meta'):
        out = deform_conv2d(torch.empty(2, 4, 8, 8), torch.empty(2, 18, 8, 8), torch.empty(6, 4, 3, 3),
                            padding=1, mask=torch.empty(2, 9, 8, 8))
    assert out.shape == (2, 6, 8, 8) and out.device.type == 'meta'


# ------------------------------------------------------------------------------------------- the models that need it
def _offset_convs_have_gradients(net):
    """Some deformable conv's offset/mask branch received a gradient: the backward reached the sampling."""
    from basicsr.ops.dcn import ModulatedDeformConvPack

    dcns = [m for m in net.modules() if isinstance(m, ModulatedDeformConvPack)]
    assert dcns
    return any(m.conv_offset.weight.grad is not None and m.conv_offset.weight.grad.abs().sum() > 0 for m in dcns)


def test_basicsr_edvr_trains_on_cpu():
    from basicsr.archs.edvr_arch import EDVR

    torch.manual_seed(0)
    net = EDVR(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1)
    out = net(torch.rand(1, 3, 3, 16, 16))
    assert out.shape == (1, 3, 64, 64)
    out.mean().backward()
    assert _offset_convs_have_gradients(net)


def test_basicsr_iconvsr_trains_on_cpu():
    from basicsr.archs.basicvsr_arch import IconVSR

    torch.manual_seed(0)
    net = IconVSR(num_feat=8, num_block=1, keyframe_stride=2, temporal_padding=2, spynet_path=None, edvr_path=None)
    out = net(torch.rand(1, 5, 3, 16, 16))  # temporal padding 2 (its smallest) mirrors 2 frames: 5 at least
    assert out.shape == (1, 5, 3, 64, 64)
    out.mean().backward()
    assert _offset_convs_have_gradients(net)
