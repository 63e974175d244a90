"""SPyNet optical flow and flow warping, as used by BasicVSR (framework-free).

Parameter names follow BasicSR's ``SpyNet`` (``basic_module.<level>.basic_module.<0,2,4,6,8>``) so its
checkpoints load directly; MMagic's ``SPyNet`` keys are mapped in ``checkpoint_mapping``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

NUM_LEVELS = 6
MULTIPLE = 2 ** (NUM_LEVELS - 1)


def flow_warp(x: torch.Tensor, flow: torch.Tensor, padding_mode: str = 'zeros') -> torch.Tensor:
    """Sample ``x`` (n, c, h, w) at pixel positions shifted by ``flow`` (n, h, w, 2) in (x, y) order.

    Bilinear, ``align_corners=True``, the convention of BasicVSR's official code.
    """
    _, _, h, w = x.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype, device=x.device),
                            torch.arange(w, dtype=x.dtype, device=x.device), indexing='ij')
    positions = torch.stack((xs, ys), dim=2) + flow
    grid_x = 2.0 * positions[..., 0] / max(w - 1, 1) - 1.0
    grid_y = 2.0 * positions[..., 1] / max(h - 1, 1) - 1.0
    grid = torch.stack((grid_x, grid_y), dim=3)
    return F.grid_sample(x, grid, mode='bilinear', padding_mode=padding_mode, align_corners=True)


class SpyNetLevel(nn.Module):
    """Five 7x7 convs (8→32→64→32→16→2, ReLU between) that refine the flow at one pyramid level."""

    def __init__(self):
        super().__init__()
        widths = (8, 32, 64, 32, 16, 2)
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Conv2d(c_in, c_out, kernel_size=7, stride=1, padding=3))
            if i < len(widths) - 2:
                layers.append(nn.ReLU(inplace=False))
        self.basic_module = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.basic_module(x)


class SpyNet(nn.Module):
    """Coarse-to-fine flow estimation over a 6-level image pyramid (Ranjan & Black, CVPR 2017).

    ``forward(ref, supp)`` returns the flow (n, 2, h, w) that warps ``supp`` onto ``ref``. Inputs are RGB in
    [0, 1], internally resized to a multiple of 32 and normalised with ImageNet statistics.
    """

    def __init__(self, load_path: str | None = None):
        super().__init__()
        self.basic_module = nn.ModuleList([SpyNetLevel() for _ in range(NUM_LEVELS)])
        self.register_buffer('mean', torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        if load_path:
            state = torch.load(load_path, map_location='cpu', weights_only=True)
            self.load_state_dict(state.get('params', state), strict=True)

    def _pyramid_flow(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        refs = [(ref - self.mean) / self.std]
        supps = [(supp - self.mean) / self.std]
        for _ in range(NUM_LEVELS - 1):
            refs.append(F.avg_pool2d(refs[-1], kernel_size=2, stride=2, count_include_pad=False))
            supps.append(F.avg_pool2d(supps[-1], kernel_size=2, stride=2, count_include_pad=False))
        coarsest = refs[-1]
        flow = coarsest.new_zeros(coarsest.size(0), 2, coarsest.size(2), coarsest.size(3))
        for level, (ref_l, supp_l) in enumerate(zip(reversed(refs), reversed(supps))):
            if level > 0:
                flow = F.interpolate(flow, scale_factor=2, mode='bilinear', align_corners=True) * 2.0
            warped = flow_warp(supp_l, flow.permute(0, 2, 3, 1), padding_mode='border')
            flow = self.basic_module[level](torch.cat([ref_l, warped, flow], dim=1)) + flow
        return flow

    def forward(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        h, w = ref.shape[2:]
        h_up, w_up = -(-h // MULTIPLE) * MULTIPLE, -(-w // MULTIPLE) * MULTIPLE
        ref = F.interpolate(ref, size=(h_up, w_up), mode='bilinear', align_corners=False)
        supp = F.interpolate(supp, size=(h_up, w_up), mode='bilinear', align_corners=False)
        flow = F.interpolate(self._pyramid_flow(ref, supp), size=(h, w), mode='bilinear', align_corners=False)
        scale = flow.new_tensor([w / w_up, h / h_up]).view(1, 2, 1, 1)
        return flow * scale
