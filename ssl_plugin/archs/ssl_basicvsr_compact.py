"""The compact (physically pruned) form of ``SSLBasicVSR``: which channels a plan keeps, and how to fill them.

``compact_layout`` derives, once, the kept channels of every pruned layer from a plan; ``SSLBasicVSR`` sizes its
compact layers from it and ``build_compact`` fills them. ``build_compact`` folds the dense network's scaling factors
into its conv weights and copies the kept rows (filters) and columns (input channels), so the compact network
computes what the dense one computes with the pruned factors set to zero, without the pruned units.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple

import torch
from torch import nn

from ssl_plugin.pruning.plan import PruningPlan

PS_GROUP = 4  # filters per PixelShuffle(2) output channel: one unit of the upconv1 / upconv2 groups


def branch_names(bidirectional: bool) -> tuple[str, ...]:
    """The propagation branches, in the order their hidden states are concatenated before fusion."""
    return ('backward', 'forward') if bidirectional else ('forward',)


class BlockLayout(NamedTuple):
    """Kept channels of one residual block, as indices of the dense network.

    ``inputs`` (RSC input channels) and ``outputs`` (filters of the last conv) are hidden-state channels, restricted
    to the channels the branch keeps; ``mid`` are the filters of the first conv.
    """
    inputs: list[int]
    mid: list[int]
    outputs: list[int]


@dataclass(frozen=True)
class BranchLayout:
    """Kept channels of one branch: its hidden state (``hidden``) and its residual blocks."""
    hidden: list[int]
    blocks: list[BlockLayout]

    def local_blocks(self) -> list[BlockLayout]:
        """``blocks`` with ``inputs``/``outputs`` as positions within the compact hidden state (what the compact
        residual blocks index)."""
        position = {channel: i for i, channel in enumerate(self.hidden)}
        return [BlockLayout([position[c] for c in block.inputs], block.mid, [position[c] for c in block.outputs])
                for block in self.blocks]


@dataclass(frozen=True)
class CompactLayout:
    """Kept channels of every pruned layer; ``upconv1`` / ``upconv2`` list kept pixel-shuffle groups."""
    branches: dict[str, BranchLayout]
    upconv1: list[int]
    upconv2: list[int]
    conv_hr: list[int]


def compact_layout(config: Mapping[str, Any], plan: PruningPlan) -> CompactLayout:
    """The kept channels that ``plan`` leaves in an ``SSLBasicVSR`` built with ``config``."""
    num_feat, up_feat = config['num_feat'], config['upsample_feat']
    branches = {}
    for branch in branch_names(config['bidirectional']):
        hidden = plan.kept_indices(f'{branch}.hidden', num_feat)
        in_hidden = set(hidden)

        def kept_hidden(group: str) -> list[int]:
            return [c for c in plan.kept_indices(group, num_feat) if c in in_hidden]

        blocks = [BlockLayout(kept_hidden(f'{branch}.{j}.in'), plan.kept_indices(f'{branch}.{j}.mid', num_feat),
                              kept_hidden(f'{branch}.{j}.out')) for j in range(config['num_block'])]
        branches[branch] = BranchLayout(hidden, blocks)
    return CompactLayout(branches, upconv1=plan.kept_indices('upconv1', num_feat),
                         upconv2=plan.kept_indices('upconv2', up_feat), conv_hr=plan.kept_indices('conv_hr', up_feat))


@torch.no_grad()
def build_compact(dense: nn.Module, plan: PruningPlan | dict) -> nn.Module:
    """A new compact network that physically drops the units ``plan`` prunes from ``dense`` (a dense
    ``SSLBasicVSR``), factors folded in.

    Its output equals ``dense``'s output with the pruned factors set to 0; ``dense`` is left unchanged.
    """
    dense._require_dense('pruned')
    plan = PruningPlan.coerce(plan)
    compact = type(dense)(**dense.config, plan=plan).to(dense.spynet.mean.device)
    compact.spynet.load_state_dict(dense.spynet.state_dict())
    layout = compact_layout(dense.config, plan)
    num_feat = dense.config['num_feat']
    fusion_cols = []
    for offset, (branch, kept) in enumerate(layout.branches.items()):
        src, dst = getattr(dense, f'{branch}_trunk'), getattr(compact, f'{branch}_trunk')
        fusion_cols += [offset * num_feat + c for c in kept.hidden]
        _copy_conv(dst.conv_in, src.conv_in, rows=kept.hidden, cols=[0, 1, 2] + [3 + c for c in kept.hidden],
                   row_scale=src.hidden_scale)
        for s_block, d_block, block in zip(src.blocks, dst.blocks, kept.blocks):
            _copy_conv(d_block.conv1, s_block.conv1, rows=block.mid, cols=block.inputs,
                       row_scale=s_block.mid_scale, col_scale=s_block.in_scale)
            _copy_conv(d_block.conv2, s_block.conv2, rows=block.outputs, cols=block.mid, row_scale=s_block.out_scale)
    _copy_conv(compact.fusion, dense.fusion, rows=list(range(num_feat)), cols=fusion_cols)
    _copy_conv(compact.upconv1, dense.upconv1, rows=_ps_rows(layout.upconv1), cols=list(range(num_feat)),
               row_scale=dense.upconv1_scale.repeat_interleave(PS_GROUP))
    _copy_conv(compact.upconv2, dense.upconv2, rows=_ps_rows(layout.upconv2), cols=layout.upconv1,
               row_scale=dense.upconv2_scale.repeat_interleave(PS_GROUP))
    _copy_conv(compact.conv_hr, dense.conv_hr, rows=layout.conv_hr, cols=layout.upconv2, row_scale=dense.conv_hr_scale)
    _copy_conv(compact.conv_last, dense.conv_last, rows=[0, 1, 2], cols=layout.conv_hr)
    return compact


def _ps_rows(groups: list[int]) -> list[int]:
    """Filters of the kept pixel-shuffle ``groups``."""
    return [PS_GROUP * g + r for g in groups for r in range(PS_GROUP)]


def _copy_conv(dst: nn.Conv2d, src: nn.Conv2d, rows: list[int], cols: list[int],
               row_scale: torch.Tensor | None = None, col_scale: torch.Tensor | None = None) -> None:
    """dst = src restricted to output ``rows`` and input ``cols``, with output/input factors folded in."""
    rows_t = torch.tensor(rows, dtype=torch.long, device=src.weight.device)
    cols_t = torch.tensor(cols, dtype=torch.long, device=src.weight.device)
    weight = src.weight.index_select(0, rows_t).index_select(1, cols_t)
    bias = src.bias.index_select(0, rows_t)
    if row_scale is not None:
        scale = row_scale.index_select(0, rows_t)
        weight = weight * scale.view(-1, 1, 1, 1)
        bias = bias * scale
    if col_scale is not None:
        weight = weight * col_scale.index_select(0, cols_t).view(1, -1, 1, 1)
    dst.weight.copy_(weight)
    dst.bias.copy_(bias)
