"""Sparsity-inducing regularisation on the scaling factors of the units selected for pruning (SSL Eq. 1)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ssl_plugin.options import REGULARIZATION


@dataclass(frozen=True)
class GrowingRegularization:
    """L = α Σ γ² over the selected factors; α grows by ``delta`` every ``t1`` iterations up to ``tau``, then
    ``t2`` more iterations follow at ``tau``. Paper defaults: t1=5, t2=3375, delta=1e-4, tau=0.1 (8,375 iterations).
    """
    delta: float = 1e-4
    tau: float = 0.1
    t1: int = 5
    t2: int = 3375

    def __post_init__(self):
        REGULARIZATION.check(asdict(self), 'pruning.regularization')

    @property
    def growth_steps(self) -> int:
        """How many increments of ``delta`` reach ``tau``."""
        return round(self.tau / self.delta)

    @property
    def total_iters(self) -> int:
        return self.growth_steps * self.t1 + self.t2

    def alpha(self, step: int) -> float:
        """α at ``step`` (0-based iteration inside the regularisation phase)."""
        return self.delta * min(self.growth_steps, step // self.t1 + 1)


def sparsity_loss(factors: list[torch.Tensor], alpha: float) -> torch.Tensor:
    """α · Σ γ² over the given factor tensors."""
    return alpha * sum(f.pow(2).sum() for f in factors)
