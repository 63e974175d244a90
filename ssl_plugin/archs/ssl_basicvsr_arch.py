"""BasicVSR / BasicVSR-uni with SSL scaling factors, and its physically pruned (compact) form.

Dense form (``plan=None``): exactly BasicVSR's layers (and activations: LeakyReLU 0.1 outside, ReLU inside residual
blocks) plus a scaling factor per prunable unit, all initialised to 1 so that BasicSR / MMagic checkpoints give
the same output. Factors multiply conv OUTPUTS (bias included, so a zero factor makes the channel exactly zero),
the first conv's INPUT in every residual block (RSC, Eq. 2) and, on the pixel-shuffle convs, the four consecutive
filters of one pixel-shuffle group together (Eq. 5).

Compact form (``plan`` given): factors are folded into the weights and pruned units are gone. A residual block reads
only its kept input channels and adds its output back at its kept indices, out of place (RSC, Eqs. 2-4), so the
hidden state keeps its full width. The plan travels in the state dict (``get_extra_state``) and loading a
state dict rebuilds the matching network, so a checkpoint alone restores the compact model in any framework.

Prunable groups (``prunable_groups()``), named ``<branch>.<block>.{in,mid,out}``, ``<branch>.hidden``
(channels of the recurrent state, used by the aligned ASSL baseline), ``upconv1``, ``upconv2`` (pixel-shuffle
groups) and ``conv_hr``. SpyNet, the input convs' RGB part, the 1x1 fusion conv and ``conv_last`` are never pruned.

The RSC channel ops live in ``rsc``; the kept-channel layout of a plan and the compact builder in
``ssl_basicvsr_compact``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from effsr_core.checkpoints import load_weights, read_generator_state
from effsr_core.registry import register
from ssl_plugin.archs import checkpoint_mapping
from ssl_plugin.archs.rsc import add_to_channels, gather_channels
from ssl_plugin.archs.spynet import SpyNet, flow_warp
from ssl_plugin.archs.ssl_basicvsr_compact import (PS_GROUP, BlockLayout, branch_names, build_compact,
                                                   compact_layout)
from ssl_plugin.archs.ssl_basicvsr_export import scriptable_basicvsr
from ssl_plugin.pruning.plan import PruningPlan, decode_state, encode_state

UPSAMPLER_GROUPS = ('upconv1', 'upconv2', 'conv_hr')


def _ones(n: int) -> nn.Parameter:
    return nn.Parameter(torch.ones(n))


def _channel_view(factor: torch.Tensor) -> torch.Tensor:
    return factor.view(1, -1, 1, 1)


def _index_buffer(module: nn.Module, name: str, indices: list[int] | None, full: int) -> None:
    """Register ``indices`` as a non-persistent int64 buffer (an empty list too: no channel kept), or ``None`` when
    they select all ``full`` channels."""
    value = None if indices is None or list(indices) == list(range(full)) else torch.tensor(indices, dtype=torch.long)
    module.register_buffer(name, value, persistent=False)


def factor_name(group: str) -> str:
    """State-dict name of the scaling factor of prunable group ``group`` (see ``SSLBasicVSR.prunable_groups``)."""
    if group in UPSAMPLER_GROUPS:
        return f'{group}_scale'
    branch, *rest = group.split('.')
    if rest == ['hidden']:
        return f'{branch}_trunk.hidden_scale'
    block, kind = rest
    return f'{branch}_trunk.blocks.{block}.{kind}_scale'


class ResidualBlock(nn.Module):
    """conv3x3 → ReLU → conv3x3 + identity (BasicSR's ResidualBlockNoBN), dense with factors or compact (RSC).

    The compact form adds its output to its input tensor in place when no gradient is recorded (inference): the
    trunk never reads a block's input again. A plan may leave a compact block none of its input or output channels
    (it may keep ``in`` / ``out`` channels outside the branch's ``hidden`` ones; PyTorch's convs refuse or
    mishandle 0 channels): with no input channel its first conv sees only zeros, so its output is its bias
    everywhere; with no output channel the block adds nothing.

    Args:
        channels: width of the hidden state the block reads and writes.
        kept: compact form only: (in, mid, out) kept indices; ``in``/``out`` index the hidden state.
    """

    def __init__(self, channels: int, kept: BlockLayout | tuple[list[int], list[int], list[int]] | None = None):
        super().__init__()
        self.dense = kept is None
        kept_in, kept_mid, kept_out = kept or (range(channels),) * 3
        self.reads_input, self.writes_output = len(kept_in) > 0, len(kept_out) > 0
        self.conv1 = nn.Conv2d(len(kept_in), len(kept_mid), 3, 1, 1)
        self.conv2 = nn.Conv2d(len(kept_mid), len(kept_out), 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)
        if self.dense:
            self.in_scale, self.mid_scale, self.out_scale = _ones(channels), _ones(channels), _ones(channels)
        else:
            _index_buffer(self, 'in_index', kept_in, channels)
            _index_buffer(self, 'out_index', kept_out, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dense:
            h = self.relu(self.conv1(x * _channel_view(self.in_scale)) * _channel_view(self.mid_scale))
            return x + self.conv2(h) * _channel_view(self.out_scale)
        if not self.writes_output:
            return x
        if self.reads_input:
            h = self.relu(self.conv1(x if self.in_index is None else gather_channels(x, self.in_index)))
        else:
            h = torch.relu(self.conv1.bias).view(1, -1, 1, 1).expand(x.shape[0], -1, x.shape[2], x.shape[3])
        h = self.conv2(h)
        if self.out_index is not None:
            return add_to_channels(x, self.out_index, h)
        return x + h if torch.is_grad_enabled() else x.add_(h)


class Trunk(nn.Module):
    """One propagation branch: conv3x3 (RGB + hidden → hidden) + LeakyReLU(0.1) + residual blocks."""

    def __init__(self, num_feat: int, num_block: int, width: int | None = None,
                 block_kept: list[BlockLayout] | None = None):
        super().__init__()
        self.dense = block_kept is None
        width = num_feat if width is None else width
        self.conv_in = nn.Conv2d(3 + width, width, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)
        self.blocks = nn.ModuleList(
            ResidualBlock(width, None if self.dense else block_kept[j]) for j in range(num_block))
        if self.dense:
            self.hidden_scale = _ones(num_feat)
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        if self.dense:
            h = h * _channel_view(self.hidden_scale)
        h = self.lrelu(h)
        for block in self.blocks:
            h = block(h)
        return h


@register('arch', example={'kwargs': {'num_feat': 4, 'num_block': 1, 'upsample_feat': 4}, 'input': (1, 2, 3, 16, 16)})
class SSLBasicVSR(nn.Module):
    """BasicVSR (bidirectional) or BasicVSR-uni (forward branch only) for SSL structured pruning, x4.

    Args:
        num_feat: channels of the recurrent hidden state (64 in BasicVSR).
        num_block: residual blocks per branch (30 in BasicVSR).
        bidirectional: False builds BasicVSR-uni (online: no backward branch).
        upsample_feat: channels after the second pixel shuffle and of ``conv_hr`` (64 in BasicVSR).
        spynet_path: optional pretrained SpyNet weights (BasicSR format).
        plan: ``None`` for the dense network with scaling factors, else a pruning plan (``PruningPlan`` or its
            dict) describing the compact network.
        pretrained: optional checkpoint of the whole network: BasicSR ``BasicVSR`` / MMagic ``BasicVSRNet`` (or
            BasicVSR model) / this class, dense or compact (the plan is read from it). Handy in MMagic configs,
            whose ``load_from`` only reads MMagic checkpoints.
    """

    def __init__(self, num_feat: int = 64, num_block: int = 30, bidirectional: bool = True, upsample_feat: int = 64,
                 spynet_path: str | None = None, plan: PruningPlan | dict | None = None, pretrained: str | None = None):
        super().__init__()
        self.config = dict(num_feat=num_feat, num_block=num_block, bidirectional=bidirectional,
                           upsample_feat=upsample_feat)
        self.spynet = SpyNet(spynet_path)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)
        self._register_load_state_dict_pre_hook(self._before_load_state_dict)
        self.pending_plan: PruningPlan | None = None  # units being regularised towards zero (dense network only)
        self._build(None if plan is None else PruningPlan.coerce(plan))
        if pretrained:
            load_weights(self, read_generator_state(pretrained), strict=True, source=str(pretrained))

    # ------------------------------------------------------------------------------------------ structure
    @property
    def branches(self) -> tuple[str, ...]:
        return branch_names(self.config['bidirectional'])

    @property
    def plan(self) -> PruningPlan | None:
        return self._plan

    def prunable_groups(self) -> dict[str, int]:
        """Size (number of units) of every prunable group of the dense architecture, in a fixed order.

        A unit is a filter (``mid``, ``out``, ``hidden``, ``conv_hr``), an input channel of a residual block's first
        conv (``in``, RSC) or a group of 4 filters feeding one pixel-shuffle output channel (``upconv1/2``).
        """
        num_feat, up_feat = self.config['num_feat'], self.config['upsample_feat']
        groups = {}
        for branch in self.branches:
            groups[f'{branch}.hidden'] = num_feat
            for j in range(self.config['num_block']):
                groups.update({f'{branch}.{j}.{kind}': num_feat for kind in ('in', 'mid', 'out')})
        groups.update(upconv1=num_feat, upconv2=up_feat, conv_hr=up_feat)
        return groups

    def unit_kind(self, group: str) -> str:
        """``upsampler`` for the pixel-shuffle convs and ``conv_hr``, else the group's last name part (``in``,
        ``mid``, ``out``, ``hidden``)."""
        return 'upsampler' if group in UPSAMPLER_GROUPS else group.rsplit('.', 1)[-1]

    def _build(self, plan: PruningPlan | None) -> None:
        """(Re)create every pruned layer for ``plan`` (dense with factors when ``None``); SpyNet is kept."""
        if plan is not None:
            plan.check_against(self.config, self.prunable_groups())
            self.pending_plan = None
        self._plan = plan
        num_feat, num_block, up_feat = (self.config[k] for k in ('num_feat', 'num_block', 'upsample_feat'))
        layout = None if plan is None else compact_layout(self.config, plan)
        widths = {}
        for branch in ('backward', 'forward'):
            if branch not in self.branches:
                setattr(self, f'{branch}_trunk', None)
                continue
            if layout is None:
                trunk = Trunk(num_feat, num_block)
            else:
                kept = layout.branches[branch]
                trunk = Trunk(num_feat, num_block, len(kept.hidden), kept.local_blocks())
            setattr(self, f'{branch}_trunk', trunk)
            widths[branch] = trunk.width
        fused = sum(widths.values())
        n_up1 = num_feat if layout is None else len(layout.upconv1)
        n_up2 = up_feat if layout is None else len(layout.upconv2)
        n_hr = up_feat if layout is None else len(layout.conv_hr)
        self.fusion = nn.Conv2d(fused, num_feat, 1, 1, 0)
        self.upconv1 = nn.Conv2d(num_feat, n_up1 * PS_GROUP, 3, 1, 1)
        self.upconv2 = nn.Conv2d(n_up1, n_up2 * PS_GROUP, 3, 1, 1)
        self.conv_hr = nn.Conv2d(n_up2, n_hr, 3, 1, 1)
        self.conv_last = nn.Conv2d(n_hr, 3, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(2)
        if plan is None:
            self.upconv1_scale, self.upconv2_scale, self.conv_hr_scale = _ones(num_feat), _ones(up_feat), _ones(up_feat)
        else:
            for name in ('upconv1_scale', 'upconv2_scale', 'conv_hr_scale'):
                if name in self._parameters:
                    del self._parameters[name]

    # ------------------------------------------------------------------------------------------ forward
    def compute_flows(self, lqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """SpyNet flows between neighbours: (to previous frame, to next frame), each (b, t-1, 2, h, w)."""
        b, t, c, h, w = lqs.shape
        earlier = lqs[:, :-1].reshape(-1, c, h, w)
        later = lqs[:, 1:].reshape(-1, c, h, w)
        flows_to_next = self.spynet(earlier, later).view(b, t - 1, 2, h, w) if self.config['bidirectional'] else None
        flows_to_previous = self.spynet(later, earlier).view(b, t - 1, 2, h, w)
        return flows_to_previous, flows_to_next

    def forward(self, lqs: torch.Tensor, return_hidden: bool = False, flows=None):
        """Super-resolve a sequence (b, t, 3, h, w) → (b, t, 3, 4h, 4w).

        Args:
            lqs: low-quality frames in [0, 1].
            return_hidden: also return the final hidden states ``{'forward': H_F,T, 'backward': H_B,0}``
                (the inputs of the Temporal Finetuning loss).
            flows: precomputed ``compute_flows(lqs)`` (benchmarks time SpyNet apart).
        """
        b, t, _, h, w = lqs.shape
        flows_to_previous, flows_to_next = self.compute_flows(lqs) if flows is None else flows
        hidden = {}
        backward_feats = [None] * t
        if self.backward_trunk is not None:
            feat = lqs.new_zeros(b, self.backward_trunk.width, h, w)
            for i in range(t - 1, -1, -1):
                if i < t - 1:
                    feat = flow_warp(feat, flows_to_next[:, i].permute(0, 2, 3, 1))
                feat = self.backward_trunk(torch.cat([lqs[:, i], feat], dim=1))
                backward_feats[i] = feat
            hidden['backward'] = feat
        feat = lqs.new_zeros(b, self.forward_trunk.width, h, w)
        outputs = []
        for i in range(t):
            if i > 0:
                feat = flow_warp(feat, flows_to_previous[:, i - 1].permute(0, 2, 3, 1))
            feat = self.forward_trunk(torch.cat([lqs[:, i], feat], dim=1))
            fused = feat if backward_feats[i] is None else torch.cat([backward_feats[i], feat], dim=1)
            outputs.append(self._reconstruct(fused, lqs[:, i]))
        hidden['forward'] = feat
        output = torch.stack(outputs, dim=1)
        return (output, hidden) if return_hidden else output

    def _reconstruct(self, fused: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
        dense = self._plan is None
        out = self.lrelu(self.fusion(fused))
        out = self.upconv1(out)
        if dense:
            out = out * _channel_view(self.upconv1_scale.repeat_interleave(PS_GROUP))
        out = self.lrelu(self.pixel_shuffle(out))
        out = self.upconv2(out)
        if dense:
            out = out * _channel_view(self.upconv2_scale.repeat_interleave(PS_GROUP))
        out = self.lrelu(self.pixel_shuffle(out))
        out = self.conv_hr(out)
        if dense:
            out = out * _channel_view(self.conv_hr_scale)
        out = self.conv_last(self.lrelu(out))
        return out + F.interpolate(lq, scale_factor=4, mode='bilinear', align_corners=False)

    def export_form(self) -> nn.Module:
        """An equivalent module that ``torch.jit.script`` compiles, for export: tracing this forward would unroll
        its loops over frames into a fixed count and bake SpyNet's sizes in (see ``ssl_basicvsr_export``)."""
        return scriptable_basicvsr(self)

    # ------------------------------------------------------------------------------------------ pruning
    def factor_sizes(self) -> dict[str, int]:
        """State-dict names and sizes of all scaling factors of the dense network (one per prunable group)."""
        return {factor_name(group): size for group, size in self.prunable_groups().items()}

    def _require_dense(self, action: str) -> None:
        if self._plan is not None:
            raise RuntimeError(f'{action} needs the dense network (with scaling factors); this one is compact.')

    def _group_factors(self, name: str) -> list[nn.Parameter]:
        """The factors that carry the units of group ``name``: its own one and, for ``hidden`` (channels shared by
        the input conv and every residual add of the branch), every residual block's output factor."""
        factors = [self.get_parameter(factor_name(name))]
        if name.endswith('.hidden'):
            factors += [block.out_scale for block in self._group_layer(name)[0].blocks]
        return factors

    def _group_layer(self, name: str):
        """(trunk, block or None, kind) for a group name such as ``forward.3.mid`` or ``backward.hidden``."""
        branch, *rest = name.split('.')
        trunk = getattr(self, f'{branch}_trunk')
        if rest == ['hidden']:
            return trunk, None, 'hidden'
        return trunk, trunk.blocks[int(rest[0])], rest[1]

    def unit_factors(self, name: str, indices: torch.Tensor) -> list[torch.Tensor]:
        """The scaling factors that carry units ``indices`` of group ``name`` (differentiable)."""
        self._require_dense('unit_factors')
        return [factor.index_select(0, indices) for factor in self._group_factors(name)]

    @torch.no_grad()
    def unit_importance(self, name: str, group_score: str = 'sum') -> torch.Tensor:
        """L1 norm of each unit of group ``name`` on the effective (factor-scaled) weights.

        Filters: sum |W[k]|; RSC input channels: sum |W[:, k]|; pixel-shuffle groups: sum |W[4k:4k+4]|
        (``group_score='sum'``, the L1 norm of the 4-filter unit) or that sum / 4 (``'mean'``, per filter, on the
        scale of single-filter units in a global ranking); ``hidden`` channels (aligned pruning): the input conv's
        filter plus every residual block's last filter.
        """
        self._require_dense('unit_importance')
        if name in UPSAMPLER_GROUPS:
            conv, scale = getattr(self, name), getattr(self, f'{name}_scale')
            if name != 'conv_hr':
                scale = scale.repeat_interleave(PS_GROUP)
            per_filter = (conv.weight.abs().sum(dim=(1, 2, 3)) * scale.abs())
            if name == 'conv_hr':
                return per_filter
            grouped = per_filter.view(-1, PS_GROUP)
            return grouped.sum(dim=1) if group_score == 'sum' else grouped.mean(dim=1)
        trunk, block, kind = self._group_layer(name)
        if kind == 'hidden':
            score = trunk.conv_in.weight.abs().sum(dim=(1, 2, 3)) * trunk.hidden_scale.abs()
            for b in trunk.blocks:
                score = score + b.conv2.weight.abs().sum(dim=(1, 2, 3)) * b.out_scale.abs()
            return score
        if kind == 'out':
            return block.conv2.weight.abs().sum(dim=(1, 2, 3)) * block.out_scale.abs()
        effective = (block.conv1.weight.abs() * block.mid_scale.abs().view(-1, 1, 1, 1)
                     * block.in_scale.abs().view(1, -1, 1, 1))
        return effective.sum(dim=(1, 2, 3)) if kind == 'mid' else effective.sum(dim=(0, 2, 3))

    @torch.no_grad()
    def zero_pruned_factors(self, plan: PruningPlan) -> None:
        """Set the factors of every unit the plan prunes to 0 (the dense twin of the compact network)."""
        self._require_dense('zero_pruned_factors')
        groups = self.prunable_groups()
        for name in plan.kept:
            pruned = torch.tensor(plan.pruned_indices(name, groups[name]), dtype=torch.long)
            for factor in self._group_factors(name):
                factor[pruned] = 0

    def pruned(self, plan: PruningPlan | dict) -> 'SSLBasicVSR':
        """A new compact network that physically drops the units ``plan`` prunes, factors folded into weights.

        Its output equals this network's output with the pruned factors set to 0 (see ``build_compact``).
        """
        return build_compact(self, plan)

    # ------------------------------------------------------------------------------------------ state
    def get_extra_state(self) -> torch.Tensor:
        """The plan (and the pending selection) as a JSON byte tensor: part of every state dict."""
        as_dict = lambda plan: None if plan is None else plan.to_dict()  # noqa: E731
        return encode_state({'plan': as_dict(self._plan), 'pending_plan': as_dict(self.pending_plan)})

    def set_extra_state(self, state) -> None:
        """The structure was already matched to the incoming plan before loading (see the pre-hook)."""

    def _before_load_state_dict(self, state_dict, prefix, *args) -> None:
        """Map BasicSR / MMagic BasicVSR weights, then rebuild for the plan the incoming state dict carries."""
        checkpoint_mapping.adapt_in_place(state_dict, prefix, self)
        extra = state_dict.get(prefix + checkpoint_mapping.EXTRA_STATE)
        if extra is None:
            return  # a state dict without a plan: loaded as is (strict loading reports what is missing)
        extra = decode_state(extra)
        as_plan = lambda data: None if data is None else PruningPlan.coerce(data)  # noqa: E731
        plan = as_plan(extra.get('plan'))
        self.pending_plan = as_plan(extra.get('pending_plan'))
        if plan != self._plan:
            device = self.spynet.mean.device
            self._build(plan)
            self.to(device)
