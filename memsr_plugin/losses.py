"""MemSR's initialisation-aware feature distillation loss (Sec. 3.4, Eq. 12 and 14), framework-free and registered
in BasicSR and MMagic."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from effsr_core.registry import register

Adapter = Mapping[str, Tensor]


def identity_adapters(channels: Sequence[tuple[int, int]]) -> list[dict[str, Tensor]]:
    """Adapters ``{'weight': [c_t, c_s, 1, 1], 'bias': [c_t]}`` copying the first ``min(c_s, c_t)`` student channels
    to the teacher's, one per ``(c_s, c_t)`` pair (a neutral start where no Algorithm-1 adapters exist)."""
    adapters = []
    for c_s, c_t in channels:
        weight = torch.zeros(c_t, c_s, 1, 1)
        weight[:, :, 0, 0] = torch.eye(c_t, c_s)
        adapters.append({'weight': weight, 'bias': torch.zeros(c_t)})
    return adapters


def adapter_conv(adapter: Adapter, name: str = 'adapters') -> nn.Conv2d:
    """The trainable 1x1 conv ``M_i`` holding ``adapter``'s weight ``[c_t, c_s, 1, 1]`` and bias ``[c_t]``."""
    weight, bias = adapter.get('weight'), adapter.get('bias')
    if not isinstance(weight, Tensor) or weight.dim() != 4 or weight.shape[2:] != (1, 1):
        raise ValueError(f'{name}: weight must be a tensor [c_t, c_s, 1, 1], got '
                         f'{tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__}.')
    if not isinstance(bias, Tensor) or tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f'{name}: bias must be a tensor [{weight.shape[0]}] (c_t of the weight), got '
                         f'{tuple(bias.shape) if isinstance(bias, Tensor) else type(bias).__name__}.')
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], 1)
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
    return conv


#: The image range of the paper's code (EDSR-PyTorch's ``rgb_range`` 255): its L1 loss and its teachers' features
#: are at that scale, while BasicSR and MMagic compute the pixel loss on images in [0, 1].
PAPER_IMAGE_RANGE = 255.0


def paper_feature_unit(feature_scale: float) -> float:
    """The factor that gives Eq. 12's distance the weight it has against the L1 loss in the paper, for a teacher
    whose features are at ``feature_scale`` times the [0, 1] image (BasicSR's EDSR: 255, MMagic's EDSRNet: 1 / std).

    The paper's loss is ``L1_255 + w * MSE(F * 255 / s)`` = ``255 * (L1 + w * MSE(F) * 255 / s^2)`` with the
    toolboxes' ``L1`` and ``F``; the constant 255 only rescales the loss (Adam's steps do not change), so the factor
    on the toolboxes' feature distance is ``255 / s^2``: 1/255 for BasicSR's EDSR, 255 for an EDSRNet.
    """
    return PAPER_IMAGE_RANGE / feature_scale ** 2


def _example_features() -> tuple[list[Tensor], list[Tensor], int, int]:
    """Student features (4 and 6 channels), teacher features (5 and 6 channels), iteration 3 of 10."""
    generator = torch.Generator().manual_seed(0)
    student = [torch.rand(2, c, 5, 5, generator=generator) for c in (4, 6)]
    teacher = [torch.rand(2, c, 5, 5, generator=generator) for c in (5, 6)]
    return student, teacher, 3, 10


@register('loss', example={'kwargs': {'adapters': identity_adapters([(4, 5), (6, 6)])}, 'inputs': _example_features})
class InitAwareDistillationLoss(nn.Module):
    """λ·ε^(iteration/total)·(1/n)·Σ_i MSE(F_T_i, M_i * F_S_i): the distillation term of Eq. 14 (Eq. 12 decayed),
    which pulls the student's features towards the teacher's early in training and fades towards the L1 task loss.

    The adapters ``M_i`` are trainable 1x1 convs; MemSR initialises them with Algorithm 1's decomposition, so the
    loss starts near zero for a student initialised from the same decomposition (FDInit, Table 1).

    Args:
        loss_weight: λ (the paper: 0.3).
        epsilon: ε in (0, 1]; the weight decays from λ at the first iteration to λ·ε at the last (paper: 1e-5).
        adapters: initial ``{'weight': [c_t, c_s, 1, 1], 'bias': [c_t]}`` per distilled layer.
        feature_unit: factor on the feature distance, to balance it against the pixel loss in the paper's units
            (``paper_feature_unit``; 1: the distance as it is).
    """

    def __init__(self, loss_weight: float = 0.3, epsilon: float = 1e-5, adapters: Sequence[Adapter] | None = None,
                 feature_unit: float = 1.0):
        super().__init__()
        if not feature_unit > 0:
            raise ValueError(f'InitAwareDistillationLoss.feature_unit: {feature_unit!r} must be > 0.')
        self.feature_unit = float(feature_unit)
        if not loss_weight >= 0:
            raise ValueError(f'InitAwareDistillationLoss.loss_weight: {loss_weight!r} must be >= 0.')
        if not 0 < epsilon <= 1:
            raise ValueError(f'InitAwareDistillationLoss.epsilon: {epsilon!r} must lie in (0, 1].')
        self.loss_weight, self.epsilon = float(loss_weight), float(epsilon)
        self.adapters = nn.ModuleList(adapter_conv(a, f'adapters[{i}]') for i, a in enumerate(adapters or ()))

    def weight(self, iteration: int, total_iters: int) -> float:
        """λ·ε^α with α = ``iteration`` / ``total_iters`` (Eq. 14); ``iteration`` counts the steps already taken."""
        if total_iters < 1 or not 0 <= iteration <= total_iters:
            raise ValueError(f'InitAwareDistillationLoss: iteration {iteration} outside [0, {total_iters}].')
        return self.loss_weight * self.epsilon ** (iteration / total_iters)

    def distance(self, student_features: Sequence[Tensor], teacher_features: Sequence[Tensor]) -> Tensor:
        """(1/n)·Σ_i MSE(F_T_i, M_i * F_S_i) (Eq. 12); the teacher features get no gradient."""
        n = len(self.adapters)
        if not n or len(student_features) != n or len(teacher_features) != n:
            raise ValueError(f'InitAwareDistillationLoss: {len(student_features)} student and '
                             f'{len(teacher_features)} teacher features for {n} adapters.')
        return self.feature_unit * sum(F.mse_loss(adapter(s), t.detach())
                                       for adapter, s, t in zip(self.adapters, student_features, teacher_features)) / n

    def forward(self, student_features: Sequence[Tensor], teacher_features: Sequence[Tensor], iteration: int,
                total_iters: int) -> Tensor:
        return self.weight(iteration, total_iters) * self.distance(student_features, teacher_features)
