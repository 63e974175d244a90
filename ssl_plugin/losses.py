"""Temporal Finetuning loss (SSL Eq. 6), framework-free and registered in BasicSR and MMagic."""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from effsr_core.registry import register

NORMS = ('l2', 'l1', 'mse')


def _example_hidden_states():
    """Two branches' final hidden states of a network and of its teacher (the inputs of ``forward``)."""
    generator = torch.Generator().manual_seed(0)
    states = [{b: torch.rand(2, 4, 8, 8, generator=generator) for b in ('forward', 'backward')} for _ in range(2)]
    return states[0], states[1]


@register('loss', example={'kwargs': {}, 'inputs': _example_hidden_states})
class TemporalFinetuneLoss(nn.Module):
    """L_tf = ||H_F,T − H'_F,T|| + ||H_B,0 − H'_B,0||: final hidden states of the pruned network against those of
    the frozen unpruned network, which limits the error the recurrence accumulates after pruning.

    Args:
        loss_weight: multiplier of the loss.
        norm: ``'l2'`` (Frobenius norm per sample, the paper's ||·||, averaged over the batch), ``'l1'`` or
            ``'mse'`` (element means, scale-free alternatives).
    """

    def __init__(self, loss_weight: float = 1.0, norm: str = 'l2'):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f'TemporalFinetuneLoss.norm: {norm!r} is not one of {", ".join(NORMS)}.')
        self.loss_weight = loss_weight
        self.norm = norm

    def _distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape:
            raise ValueError(f'TemporalFinetuneLoss: hidden state {tuple(a.shape)} vs teacher {tuple(b.shape)}; it '
                             'needs full-width hidden states (SSL / L1-norm plans, not the ASSL hidden pruning).')
        diff = a - b
        if self.norm == 'l2':
            return diff.flatten(1).norm(dim=1).mean()
        if self.norm == 'l1':
            return diff.abs().mean()
        return diff.pow(2).mean()

    def forward(self, hidden: Mapping[str, torch.Tensor], teacher_hidden: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Sum over the branches present in both (``'forward'``, ``'backward'``); the teacher is not trained."""
        branches = [b for b in ('forward', 'backward') if b in hidden and b in teacher_hidden]
        if not branches:
            raise ValueError('TemporalFinetuneLoss needs hidden states of at least one branch (forward/backward).')
        return self.loss_weight * sum(self._distance(hidden[b], teacher_hidden[b].detach()) for b in branches)
