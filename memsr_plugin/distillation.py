"""MemSR's initialisation-aware distillation (Sec. 3.4), written once for every toolbox.

The winning-initialisation file (``python -m memsr_plugin.init``) holds the student's weights and, per distilled
layer, the Algorithm-1 adapter ``M_i`` mapping the student's features to those of the teacher's plain form
(``convert(teacher, **teacher_form)``) at the same layer. ``MemSRDistillation`` keeps that plain form frozen (built
from the teacher checkpoint whenever a run starts or resumes, never trained, never saved) and the adapters
trainable (inside ``InitAwareDistillationLoss``, saved by the adapters with the student), and returns the losses
of a batch: L1 task loss + λ·ε^(iteration/total)·(1/n)·Σ MSE(F_T_i, M_i * F_S_i) (Eq. 14), the distance in the
paper's units against the toolboxes' [0, 1] pixel loss (``losses.paper_feature_unit``).

The lifecycle owns no training loop. ``DistillationInit.read`` and ``check`` run before anything is built (they
refuse bad input with the toolbox's option names), ``losses`` in the forward pass.
"""
from __future__ import annotations

import os.path as osp
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
import torch.distributed as dist
from torch import Tensor, nn

from effsr_core.checkpoints import CheckpointError, load_file, load_weights, weights_reading_globals
from effsr_core.distributed import is_distributed
from effsr_core.networks import frozen
from effsr_core.options import OptionError
from memsr_plugin.conversion import NotConvertibleError, PlainConvSR, convert
from memsr_plugin.conversion.equivalence import feature_scale
from memsr_plugin.losses import PAPER_IMAGE_RANGE, InitAwareDistillationLoss, adapter_conv, paper_feature_unit

#: Keys of the initialisation file this module reads.
INIT_KEYS = ('params', 'adapters', 'layers', 'teacher_form')
#: Key of the trained adapters' state dict in a student checkpoint (beside ``params``).
ADAPTERS_KEY = 'distill_adapters'
Tensors = dict[str, Tensor]


def feature_channels(net: PlainConvSR) -> list[int]:
    """Channels of the output of every layer of ``net`` (after its pixel shuffle): what ``return_features`` gives."""
    return [width // (shuffle * shuffle) for width, shuffle in zip(net.widths, net.shuffles)]


@dataclass(frozen=True)
class DistillationInit:
    """What the initialisation file says: the adapters ``M_i``, the student layer index each maps (0-based, as in
    ``PlainConvSR.forward(x, return_features=True)``), the kwargs of ``convert`` giving the teacher's plain form,
    and the student's initial weights."""
    adapters: tuple[dict[str, Tensor], ...]
    layers: tuple[int, ...]
    teacher_form: dict[str, Any]
    params: dict[str, Tensor]  # the student's winning initialisation

    @classmethod
    def read(cls, path: str | None, option: str) -> 'DistillationInit':
        """Read ``path`` safely (weights only); ``option`` names it in every error (e.g. ``distill.init_file``)."""
        if not path or not osp.isfile(osp.expanduser(path)):
            raise OptionError(f'{option}: file {path!r} does not exist (make it with python -m memsr_plugin.init).')
        try:
            data = load_file(osp.expanduser(path))
        except CheckpointError as error:
            raise OptionError(f'{option}: {error}') from None
        missing = [key for key in INIT_KEYS if not isinstance(data, Mapping) or key not in data]
        if missing:
            raise OptionError(f'{option}: {path} is not a MemSR initialisation file (no {", ".join(missing)}).')
        adapters, layers = data['adapters'], data['layers']
        if not isinstance(layers, (list, tuple)) or not all(isinstance(i, int) for i in layers) or not layers:
            raise OptionError(f'{option}: layers must be a non-empty list of layer indices, got {layers!r}.')
        if not isinstance(adapters, (list, tuple)) or len(adapters) != len(layers):
            raise OptionError(f'{option}: {len(adapters) if isinstance(adapters, (list, tuple)) else adapters!r} '
                              f'adapters for {len(layers)} layers; expected one per layer.')
        for index, adapter in enumerate(adapters):
            try:
                adapter_conv(adapter if isinstance(adapter, Mapping) else {}, f'adapters[{index}]')
            except ValueError as error:
                raise OptionError(f'{option}: {error}') from None
        if not isinstance(data['teacher_form'], Mapping):
            raise OptionError(f'{option}: teacher_form must be a mapping of convert() arguments.')
        if not isinstance(data['params'], Mapping):
            raise OptionError(f'{option}: params must be the student\'s state dict.')
        return cls(tuple(dict(a) for a in adapters), tuple(layers), dict(data['teacher_form']), dict(data['params']))

    def plain_teacher(self, teacher: nn.Module, names: Mapping[str, str]) -> PlainConvSR:
        """The frozen plain form of ``teacher`` whose features are distilled."""
        try:
            return frozen(convert(teacher, **self.teacher_form))
        except (NotConvertibleError, TypeError) as error:
            raise OptionError(f'{names["init_file"]}: teacher_form {self.teacher_form!r} does not convert '
                              f'{names["teacher"]} ({type(teacher).__name__}): {error}') from None

    def check_widths(self, student: nn.Module, teacher_plain: PlainConvSR, names: Mapping[str, str]) -> None:
        """Every adapter maps the student's channels at its layer to the teacher plain form's channels there."""
        if not isinstance(student, PlainConvSR):
            raise OptionError(f'{names["student"]}.type: {type(student).__name__} is not PlainConvSR; MemSR '
                              'distils a plain student (its features come from return_features=True).')
        student_channels, teacher_channels = feature_channels(student), feature_channels(teacher_plain)
        for index, (layer, adapter) in enumerate(zip(self.layers, self.adapters)):
            if not 0 <= layer < min(len(student_channels), len(teacher_channels)):
                raise OptionError(f'{names["init_file"]}: layers[{index}] = {layer} is not a layer of both '
                                  f'{names["student"]} ({len(student_channels)} layers) and the plain form of '
                                  f'{names["teacher"]} ({len(teacher_channels)} layers).')
            c_t, c_s = adapter['weight'].shape[:2]
            expected = (teacher_channels[layer], student_channels[layer])
            if (c_t, c_s) != expected:
                raise OptionError(f'{names["init_file"]}: adapters[{index}] maps {c_s} student to {c_t} teacher '
                                  f'channels at layer {layer}, but {names["student"]} has {expected[1]} and the '
                                  f'plain form of {names["teacher"]} {expected[0]} there (another student or '
                                  'teacher than the initialisation was made for).')


class MemSRDistillation:
    """The frozen teacher plain form, the distillation loss with its trainable adapters, and the losses of a batch.

    Args:
        init: what the initialisation file says (``DistillationInit.read``).
        teacher: the teacher with its trained weights loaded (e.g. EDSR); only its plain form is kept.
        student: the student (a ``PlainConvSR``), to check the adapters' widths.
        loss_weight: λ of Eq. 14.
        epsilon: ε of Eq. 14.
        names: the toolbox's names of ``init_file``, ``student`` and ``teacher`` (e.g. ``distill.init_file``,
            ``network_g``, ``network_t``), for errors.
    """

    def __init__(self, init: DistillationInit, teacher: nn.Module, student: nn.Module, loss_weight: float,
                 epsilon: float, names: Mapping[str, str]):
        self.teacher = init.plain_teacher(teacher, names)
        init.check_widths(student, self.teacher, names)
        self.layers = init.layers
        self.feature_unit = paper_feature_unit(feature_scale(teacher))
        self.loss = InitAwareDistillationLoss(loss_weight, epsilon, init.adapters, self.feature_unit)

    def describe(self) -> str:
        """One line for the run's log: what is distilled and at which weight."""
        return (f'MemSR distillation: {len(self.layers)} layers, lambda {self.loss.loss_weight:g}, epsilon '
                f'{self.loss.epsilon:g}, feature distance x {self.feature_unit:.4g} (the paper\'s balance against '
                f'the L1 loss for this teacher: {PAPER_IMAGE_RANGE:g} / s^2, s = its feature scale)')

    def load_trained_adapters(self, path: str) -> bool:
        """Load the adapters saved with a student checkpoint (``ADAPTERS_KEY``: a resumed run); False when the file
        has none (an initialisation file: the adapters keep their Algorithm-1 values)."""
        checkpoint = load_file(path, allowed_globals=weights_reading_globals())
        if not isinstance(checkpoint, Mapping) or ADAPTERS_KEY not in checkpoint:
            return False
        load_weights(self.loss.adapters, checkpoint[ADAPTERS_KEY], source=f'{path} ({ADAPTERS_KEY})')
        return True

    def average_adapter_gradients(self) -> None:
        """Mean of the adapters' gradients over the processes, after ``backward``: for a toolbox whose
        DistributedDataParallel wraps the student alone (BasicSR), so that every rank's adapters stay equal."""
        if not is_distributed():
            return
        world_size = dist.get_world_size()
        for param in self.loss.parameters():
            if param.grad is not None:
                dist.all_reduce(param.grad)
                param.grad.div_(world_size)

    def losses(self, forward: Callable, lq: Tensor, gt: Tensor, pixel_loss: Callable, iteration: int,
               total_iters: int) -> tuple[Tensor, Tensors, Tensors]:
        """Run the student (``forward``, e.g. its DDP wrapper) and the teacher on ``lq``; return ``(output,
        losses, scalars)``: losses ``pix`` and ``distill`` (to be summed), scalar ``distill_weight`` (logged).
        ``iteration`` counts the steps already taken (0 at the first), ``total_iters`` those of the run."""
        output, features = forward(lq, return_features=True)
        if next(self.teacher.parameters()).device != lq.device:
            self.teacher.to(lq.device)
        with torch.no_grad():
            _, teacher_features = self.teacher(lq, return_features=True)
        student_features = [features[i] for i in self.layers]
        teacher_features = [teacher_features[i] for i in self.layers]
        losses = {'pix': pixel_loss(output, gt),
                  'distill': self.loss(student_features, teacher_features, iteration, total_iters)}
        return output, losses, {'distill_weight': torch.tensor(self.loss.weight(iteration, total_iters))}
