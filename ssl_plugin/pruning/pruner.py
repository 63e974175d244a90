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

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

import torch

from effsr_core.distributed import broadcast_from_main
from ssl_plugin.archs.ssl_basicvsr_arch import UPSAMPLER_GROUPS
from ssl_plugin.options import PRUNING
from ssl_plugin.pruning.plan import PruningPlan
from ssl_plugin.pruning.regularization import GrowingRegularization, sparsity_loss
from ssl_plugin.pruning.selection import select_kept

#: What each ``pruning.method`` prunes and how, unless the options say otherwise.
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    'ssl': dict(units=('in', 'mid', 'out', 'upsampler'), selection='min_global', regularize=True),
    'l1_norm': dict(units=('in', 'mid', 'out', 'upsampler'), selection='min_local', regularize=False),
    'assl': dict(units=('hidden', 'mid', 'upsampler'), selection='min_local', regularize=True),
}


@dataclass(frozen=True)
class PruningConfig:
    """The ``pruning`` section of an experiment (BasicSR YAML or MMagic config)."""
    method: str = 'ssl'
    ratio: float = 0.5
    selection: str | None = None
    units: tuple[str, ...] | None = None
    round_to: int | None = None
    regularization: GrowingRegularization = field(default_factory=GrowingRegularization)
    freeze_flow: bool = True
    group_score: str = 'sum'
    seed: int = 0

    def __post_init__(self):
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != 'regularization'}
        values = PRUNING.check(values | {'regularization': asdict(self.regularization)})
        defaults = METHOD_DEFAULTS[self.method]
        object.__setattr__(self, 'selection', values['selection'] or defaults['selection'])
        object.__setattr__(self, 'units', tuple(values['units'] or defaults['units']))
        object.__setattr__(self, 'ratio', values['ratio'])

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None, prefix: str = 'pruning') -> 'PruningConfig':
        """The config of a ``pruning`` section as written by the user; ``prefix`` is its name in the toolbox
        (e.g. ``model.pruning``), for the error messages."""
        values = PRUNING.check(options, prefix)
        return cls(**(values | {'regularization': GrowingRegularization(**values['regularization'])}))

    @property
    def regularize(self) -> bool:
        return METHOD_DEFAULTS[self.method]['regularize']

    @property
    def prune_iter(self) -> int:
        """The 1-based iteration at whose start the network is pruned."""
        return (self.regularization.total_iters if self.regularize else 0) + 1

    def phase(self, current_iter: int, net=None) -> str:
        """'regularize' or 'finetune' at ``current_iter``; a network already compact is always fine-tuning."""
        if net is not None and net.plan is not None:
            return 'finetune'
        return 'regularize' if current_iter < self.prune_iter else 'finetune'


class StructuredPruner:
    """Select, regularise and prune a network that offers the SSL pruning interface (see ``SSLBasicVSR``)."""

    def __init__(self, config: PruningConfig):
        self.config = config
        self._index_cache: dict[str, torch.Tensor] = {}

    def groups(self, net) -> dict[str, int]:
        """Sizes of the prunable groups this method works on."""
        chosen = {}
        for name, size in net.prunable_groups().items():
            unit = 'upsampler' if name in UPSAMPLER_GROUPS else name.rsplit('.', 1)[-1]
            if unit in self.config.units:
                chosen[name] = size
        return chosen

    def select(self, net) -> PruningPlan:
        """Plan from the current weights: importance of every unit, then the configured selection."""
        scores = {name: net.unit_importance(name, self.config.group_score) for name in self.groups(net)}
        kept = select_kept(scores, self.config.ratio, self.config.selection, self.config.round_to, self.config.seed)
        sizes = self.groups(net)
        kept = {name: idx for name, idx in kept.items() if len(idx) < sizes[name]}
        return PruningPlan(arch=net.config, kept=kept, method=self.config.method, ratio=self.config.ratio,
                           extra={'selection': self.config.selection, 'round_to': self.config.round_to,
                                  'group_score': self.config.group_score,
                                  'units': list(self.config.units)})

    def _pruned_index(self, net, plan: PruningPlan, name: str) -> torch.Tensor:
        if name not in self._index_cache:
            size = net.prunable_groups()[name]
            self._index_cache[name] = torch.tensor(plan.pruned_indices(name, size), dtype=torch.long)
        return self._index_cache[name].to(next(net.parameters()).device)

    def selected_factors(self, net, plan: PruningPlan) -> list[torch.Tensor]:
        """Factors of the units the plan prunes (the ones the regulariser drives to zero)."""
        return [f for name in plan.kept for f in net.unit_factors(name, self._pruned_index(net, plan, name))]

    def regularization_loss(self, net, plan: PruningPlan, current_iter: int) -> torch.Tensor:
        alpha = self.config.regularization.alpha(current_iter - 1)
        return sparsity_loss(self.selected_factors(net, plan), alpha)

    @torch.no_grad()
    def factor_means(self, net, plan: PruningPlan) -> dict[str, float]:
        """Mean |γ| of the units to prune and of the units kept (the curves of the paper's Fig. 6)."""
        pruned = torch.cat([f.abs().flatten() for f in self.selected_factors(net, plan)])
        total, count = 0.0, 0
        for name, size in self.groups(net).items():
            kept = torch.tensor(plan.kept_indices(name, size), dtype=torch.long, device=pruned.device)
            for factor in net.unit_factors(name, kept):
                total += factor.abs().sum().item()
                count += factor.numel()
        return {'pruned': pruned.mean().item() if pruned.numel() else 0.0, 'kept': total / max(count, 1)}

    def prune(self, net, plan: PruningPlan):
        """The compact network for ``plan`` (weights folded); ``net`` is left unchanged."""
        self._index_cache.clear()
        return net.pruned(plan)


def broadcast_plan(plan: PruningPlan) -> PruningPlan:
    """Under torch.distributed, every rank takes rank 0's plan, so all ranks prune identically."""
    return PruningPlan.from_dict(broadcast_from_main(plan.to_dict()))
