"""What a prunable architecture offers the pruner and the lifecycle: the contract ``SSLBasicVSR`` implements.

The pruner knows groups of units and their kinds, never an architecture's layer names: a new architecture joins
SSL (and the L1-norm / ASSL baselines) by implementing this protocol and registering itself.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from ssl_plugin.pruning.plan import PruningPlan


@runtime_checkable
class PrunableNetwork(Protocol):
    """A dense network with a scaling factor per prunable unit, which can rebuild itself compact from a plan.

    Attributes:
        config: the constructor arguments that fix its dense architecture (a plan is checked against them).
        plan: the plan of a compact network, None while dense.
        pending_plan: the units being regularised towards zero (dense network only), saved with its state.
        spynet: the optical-flow network (frozen while regularising with ``pruning.freeze_flow``).
    """
    config: dict[str, Any]
    pending_plan: PruningPlan | None
    spynet: nn.Module

    @property
    def plan(self) -> PruningPlan | None: ...

    def prunable_groups(self) -> dict[str, int]:
        """Size (number of units) of every prunable group of the dense architecture, in a fixed order."""

    def unit_kind(self, group: str) -> str:
        """The kind of the units of ``group``: one of ``ssl_plugin.options.UNITS`` (``pruning.units`` names them)."""

    def unit_importance(self, group: str, group_score: str = 'sum') -> torch.Tensor:
        """L1 importance of each unit of ``group`` (``group_score``: how a multi-filter unit is scored)."""

    def unit_factors(self, group: str, indices: torch.Tensor) -> list[torch.Tensor]:
        """The scaling factors that carry units ``indices`` of ``group`` (differentiable)."""

    def pruned(self, plan: PruningPlan) -> 'PrunableNetwork':
        """A new compact network without the units ``plan`` prunes; this one is left unchanged."""
