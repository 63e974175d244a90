"""Framework-free driver of structured pruning: select → regularise → prune, as a pure function of the iteration.

Methods (``pruning.method``):
  * ``ssl``: SSL (CVPR 2023) — RSC input channels, residual-block filters and pixel-shuffle groups, global Min-L1
    selection, growing sparsity regularisation, then physical pruning.
  * ``l1_norm``: one-shot L1-norm filter pruning (Li et al., ICLR 2017) of the same units, per layer, no
    regularisation (the network is pruned before the first iteration).
  * ``assl``: ASSL-style aligned pruning (NeurIPS 2021) — the channels joined by residual adds (the recurrent
    hidden state) are pruned with shared indices, per-layer ratio, with the same growing regularisation.

Iterations are 1-based as in BasicSR: iterations 1..R regularise (R = ``regularization.total_iters``, 0 for
``l1_norm``), the network is pruned at the start of iteration R + 1, fine-tuning follows.
"""
from __future__ import annotations

import torch

from effsr_core.distributed import broadcast_from_main
from ssl_plugin.pruning.config import PruningConfig
from ssl_plugin.pruning.interface import PrunableNetwork
from ssl_plugin.pruning.latency import LatencyModel, open_latency_model, select_for_latency
from ssl_plugin.pruning.plan import PruningPlan
from ssl_plugin.pruning.regularization import sparsity_loss
from ssl_plugin.pruning.selection import select_kept

class StructuredPruner:
    """Select, regularise and prune a ``PrunableNetwork`` (e.g. ``SSLBasicVSR``)."""

    def __init__(self, config: PruningConfig, latency_model: LatencyModel | None = None):
        self.config = config
        self._latency_model = latency_model
        self._index_cache: dict[str, torch.Tensor] = {}

    @property
    def latency_model(self) -> LatencyModel | None:
        """The cost model of ``pruning.latency`` (opened when first needed; None without a latency target)."""
        if self._latency_model is None and self.config.latency is not None:
            self._latency_model = open_latency_model(self.config.latency)
        return self._latency_model

    def groups(self, net: PrunableNetwork) -> dict[str, int]:
        """Sizes of the prunable groups this method works on (those whose unit kind ``pruning.units`` names)."""
        return {name: size for name, size in net.prunable_groups().items() if net.unit_kind(name) in self.config.units}

    def select(self, net: PrunableNetwork) -> PruningPlan:
        """Plan from the current weights: importance of every unit, then the configured selection."""
        scores = {name: net.unit_importance(name, self.config.group_score) for name in self.groups(net)}
        extra = {'selection': self.config.selection, 'round_to': self.config.round_to,
                 'group_score': self.config.group_score, 'units': list(self.config.units)}
        ratio = self.config.ratio
        if self.config.latency is None:
            kept = select_kept(scores, self.config)
        else:
            kept, extra['latency'] = select_for_latency(net, scores, self.config, self.latency_model)
            ratio = extra['latency']['ratio']
        sizes = self.groups(net)
        kept = {name: idx for name, idx in kept.items() if len(idx) < sizes[name]}
        return PruningPlan(arch=net.config, kept=kept, method=self.config.method, ratio=ratio, extra=extra)

    def _pruned_index(self, net: PrunableNetwork, plan: PruningPlan, name: str) -> torch.Tensor:
        if name not in self._index_cache:
            size = net.prunable_groups()[name]
            self._index_cache[name] = torch.tensor(plan.pruned_indices(name, size), dtype=torch.long)
        return self._index_cache[name].to(next(net.parameters()).device)

    def selected_factors(self, net: PrunableNetwork, plan: PruningPlan) -> list[torch.Tensor]:
        """Factors of the units the plan prunes (the ones the regulariser drives to zero)."""
        return [f for name in plan.kept for f in net.unit_factors(name, self._pruned_index(net, plan, name))]

    def regularization_loss(self, net: PrunableNetwork, plan: PruningPlan, current_iter: int) -> torch.Tensor:
        alpha = self.config.regularization.alpha(current_iter - 1)
        return sparsity_loss(self.selected_factors(net, plan), alpha)

    @torch.no_grad()
    def factor_means(self, net: PrunableNetwork, plan: PruningPlan) -> dict[str, float]:
        """Mean |γ| of the units to prune and of the units kept (the curves of the paper's Fig. 6)."""
        pruned = torch.cat([f.abs().flatten() for f in self.selected_factors(net, plan)])
        total, count = 0.0, 0
        for name, size in self.groups(net).items():
            kept = torch.tensor(plan.kept_indices(name, size), dtype=torch.long, device=pruned.device)
            for factor in net.unit_factors(name, kept):
                total += factor.abs().sum().item()
                count += factor.numel()
        return {'pruned': pruned.mean().item() if pruned.numel() else 0.0, 'kept': total / max(count, 1)}

    def prune(self, net: PrunableNetwork, plan: PruningPlan) -> PrunableNetwork:
        """The compact network for ``plan`` (weights folded); ``net`` is left unchanged."""
        self._index_cache.clear()
        return net.pruned(plan)


def broadcast_plan(plan: PruningPlan) -> PruningPlan:
    """Under torch.distributed, every rank takes rank 0's plan, so all ranks prune identically."""
    return PruningPlan.from_dict(broadcast_from_main(plan.to_dict()))
