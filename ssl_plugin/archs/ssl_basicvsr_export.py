"""``SSLBasicVSR`` in a form ``torch.jit.script`` compiles, for export (TorchScript and ONNX).

Tracing cannot export a recurrent network with a free frame count: it unrolls the Python loop over frames into a
fixed number of steps, and it bakes the SpyNet sizes (the multiple of 32 it resizes to, the flow rescaling) into
constants. ``ScriptableBasicVSR`` computes what ``SSLBasicVSR.forward`` computes, but as TorchScript: the frame
loops stay loops (ONNX ``Loop``), and every size is read from the input at run time.

It shares the network's convolutions and reads them as the compact form lays them out (a residual block reads its
kept input channels and adds its output at its kept channels); a dense network is first folded into the compact
form that keeps every unit (``build_compact`` with an empty plan: the scaling factors multiplied into the weights),
so the result differs from the dense forward by float rounding only.
"""
from __future__ import annotations


import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ssl_plugin.archs.spynet import MULTIPLE, NUM_LEVELS
from ssl_plugin.pruning.plan import PruningPlan


def scripted_flow_warp(x: Tensor, flow: Tensor, padding_mode: str) -> Tensor:
    """``spynet.flow_warp`` with the sampling grid built from the run-time size of ``x``."""
    h, w = x.shape[2], x.shape[3]
    rows = torch.arange(h, dtype=x.dtype, device=x.device).view(h, 1).expand(h, w)
    cols = torch.arange(w, dtype=x.dtype, device=x.device).view(1, w).expand(h, w)
    positions = torch.stack((cols, rows), dim=2) + flow
    grid_x = 2.0 * positions[..., 0] / max(w - 1, 1) - 1.0
    grid_y = 2.0 * positions[..., 1] / max(h - 1, 1) - 1.0
    grid = torch.stack((grid_x, grid_y), dim=3)
    return F.grid_sample(x, grid, mode='bilinear', padding_mode=padding_mode, align_corners=True)


class ScriptablePyramidLevel(nn.Module):
    """One level of SpyNet's coarse-to-fine pyramid, holding the coarser levels below it: the flow at this level
    is the coarser level's flow upsampled (zero at the coarsest level) plus this level's refinement.

    Nested modules instead of SpyNet's lists of tensors: the ONNX exporter then sees straight-line code with known
    tensor types at every level.
    """
    __constants__ = ['coarsest']

    def __init__(self, refiners: nn.ModuleList, level: int):
        super().__init__()
        self.refine = refiners[level]
        self.coarsest = level == 0
        self.coarser = nn.Identity() if self.coarsest else ScriptablePyramidLevel(refiners, level - 1)

    def forward(self, ref: Tensor, supp: Tensor) -> Tensor:
        if self.coarsest:
            flow = ref.new_zeros([ref.shape[0], 2, ref.shape[2], ref.shape[3]])
        else:
            coarse = self.coarser(F.avg_pool2d(ref, kernel_size=2, stride=2, count_include_pad=False),
                                  F.avg_pool2d(supp, kernel_size=2, stride=2, count_include_pad=False))
            flow = F.interpolate(coarse, scale_factor=2.0, mode='bilinear', align_corners=True) * 2.0
        warped = scripted_flow_warp(supp, flow.permute(0, 2, 3, 1), 'border')
        return self.refine(torch.cat([ref, warped, flow], dim=1)) + flow


class ScriptableSpyNet(nn.Module):
    """``SpyNet.forward`` with the resize target and the flow rescaling computed from the input's size."""
    __constants__ = ['multiple']

    def __init__(self, spynet: nn.Module):
        super().__init__()
        self.multiple = MULTIPLE
        self.pyramid = ScriptablePyramidLevel(spynet.basic_module, NUM_LEVELS - 1)
        self.register_buffer('mean', spynet.mean.clone(), persistent=False)
        self.register_buffer('std', spynet.std.clone(), persistent=False)

    def forward(self, ref: Tensor, supp: Tensor) -> Tensor:
        h, w = ref.shape[2], ref.shape[3]
        h_up = (h + self.multiple - 1) // self.multiple * self.multiple
        w_up = (w + self.multiple - 1) // self.multiple * self.multiple
        ref = F.interpolate(ref, size=[h_up, w_up], mode='bilinear', align_corners=False)
        supp = F.interpolate(supp, size=[h_up, w_up], mode='bilinear', align_corners=False)
        flow = self.pyramid((ref - self.mean) / self.std, (supp - self.mean) / self.std)
        flow = F.interpolate(flow, size=[h, w], mode='bilinear', align_corners=False)
        return torch.cat([flow[:, :1] * (w / w_up), flow[:, 1:] * (h / h_up)], dim=1)


class ScriptableResidualBlock(nn.Module):
    """A compact residual block: conv-ReLU-conv on the kept input channels, added at the kept output channels (none
    kept: as in ``ResidualBlock``, the first conv's output is its bias, or the block adds nothing)."""
    # compile-time flags: the branch not taken is compiled out
    __constants__ = ['gathers', 'scatters', 'reads_input', 'writes_output']

    def __init__(self, block: nn.Module):
        super().__init__()
        self.conv1, self.conv2 = block.conv1, block.conv2
        self.gathers = block.in_index is not None
        self.scatters = block.out_index is not None
        self.reads_input, self.writes_output = block.reads_input, block.writes_output
        empty = torch.zeros(0, dtype=torch.long)
        self.register_buffer('in_index', block.in_index if self.gathers else empty, persistent=False)
        self.register_buffer('out_index', block.out_index if self.scatters else empty, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if not self.writes_output:
            return x
        if self.reads_input:
            h = torch.relu(self.conv1(x.index_select(1, self.in_index) if self.gathers else x))
        else:
            bias = self.conv1.bias
            assert bias is not None  # for TorchScript, which types a conv's bias as Optional
            h = torch.relu(bias).view(1, -1, 1, 1).expand(x.shape[0], -1, x.shape[2], x.shape[3])
        h = self.conv2(h)
        return x.index_add(1, self.out_index, h) if self.scatters else x + h


class ScriptableTrunk(nn.Module):
    """One propagation branch of the compact network."""

    def __init__(self, trunk: nn.Module):
        super().__init__()
        self.conv_in = trunk.conv_in
        self.blocks = nn.ModuleList(ScriptableResidualBlock(block) for block in trunk.blocks)
        self.width = trunk.width

    def forward(self, x: Tensor) -> Tensor:
        h = F.leaky_relu(self.conv_in(x), 0.1)
        for block in self.blocks:
            h = block(h)
        return h


class ScriptableBasicVSR(nn.Module):
    """``SSLBasicVSR`` (bidirectional or uni) as TorchScript-compilable code: (b, t, 3, h, w) -> (b, t, 3, 4h, 4w).

    Build it with ``SSLBasicVSR.export_form()``; it shares the (compact) network's weights.
    """
    __constants__ = ['bidirectional']

    def __init__(self, compact: nn.Module):
        super().__init__()
        if compact.plan is None:
            raise ValueError('ScriptableBasicVSR reads the compact layout: fold a dense network first '
                             '(SSLBasicVSR.export_form does).')
        self.bidirectional = compact.backward_trunk is not None
        self.spynet = ScriptableSpyNet(compact.spynet)
        self.forward_trunk = ScriptableTrunk(compact.forward_trunk)
        # a uni network never calls its backward trunk (the branch is compiled out): the forward one stands in
        self.backward_trunk = ScriptableTrunk(compact.backward_trunk if self.bidirectional else compact.forward_trunk)
        for name in ('fusion', 'upconv1', 'upconv2', 'conv_hr', 'conv_last'):
            setattr(self, name, getattr(compact, name))

    def _reconstruct(self, fused: Tensor, lq: Tensor) -> Tensor:
        out = F.leaky_relu(self.fusion(fused), 0.1)
        out = F.leaky_relu(F.pixel_shuffle(self.upconv1(out), 2), 0.1)
        out = F.leaky_relu(F.pixel_shuffle(self.upconv2(out), 2), 0.1)
        out = self.conv_last(F.leaky_relu(self.conv_hr(out), 0.1))
        return out + F.interpolate(lq, scale_factor=4.0, mode='bilinear', align_corners=False)

    def forward(self, lqs: Tensor) -> Tensor:
        b, t, c, h, w = lqs.shape[0], lqs.shape[1], lqs.shape[2], lqs.shape[3], lqs.shape[4]
        if t > 1:
            earlier = lqs[:, :-1].reshape(-1, c, h, w)
            later = lqs[:, 1:].reshape(-1, c, h, w)
            flows_to_previous = self.spynet(later, earlier).view(b, t - 1, 2, h, w)
            flows_to_next = self.spynet(earlier, later).view(b, t - 1, 2, h, w) if self.bidirectional \
                else flows_to_previous
        else:  # no flow: and ONNX Reshape would read the 0 of (b, 0, 2, h, w) as 'keep this axis'
            flows_to_previous = lqs.new_zeros([b, 0, 2, h, w])
            flows_to_next = flows_to_previous
        # Frames go into preallocated tensors (in-place slice writes), not Python lists: lists become ONNX
        # sequences carried through Loop, which OpenVINO's ONNX frontend does not accept.
        backward_feats = lqs.new_zeros([b, t if self.bidirectional else 0, self.backward_trunk.width, h, w])
        if self.bidirectional:
            feat = self.backward_trunk(torch.cat([lqs[:, t - 1], lqs.new_zeros([b, self.backward_trunk.width, h, w])],
                                                 dim=1))
            backward_feats[:, t - 1] = feat
            for step in range(1, t):
                i = t - 1 - step
                feat = scripted_flow_warp(feat, flows_to_next[:, i].permute(0, 2, 3, 1), 'zeros')
                feat = self.backward_trunk(torch.cat([lqs[:, i], feat], dim=1))
                backward_feats[:, i] = feat
        feat = lqs.new_zeros([b, self.forward_trunk.width, h, w])
        outputs = lqs.new_zeros([b, t, self.conv_last.out_channels, 4 * h, 4 * w])
        for i in range(t):
            if i > 0:
                feat = scripted_flow_warp(feat, flows_to_previous[:, i - 1].permute(0, 2, 3, 1), 'zeros')
            feat = self.forward_trunk(torch.cat([lqs[:, i], feat], dim=1))
            fused = torch.cat([backward_feats[:, i], feat], dim=1) if self.bidirectional else feat
            outputs[:, i] = self._reconstruct(fused, lqs[:, i])
        return outputs


def scriptable_basicvsr(network: nn.Module) -> ScriptableBasicVSR:
    """The export form of an ``SSLBasicVSR``, dense (folded into the keep-everything compact form) or compact."""
    compact = network if network.plan is not None else network.pruned(PruningPlan(arch=network.config, kept={}))
    return ScriptableBasicVSR(compact.eval()).eval()
