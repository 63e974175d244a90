"""MemSR's winning initialisation of a plain student from a converted teacher (Sec. 3.3, Alg. 1, Eq. 5-11) with
the dynamic per-layer width of Sec. 3.5; framework-free. Its command line, ``python -m memsr_plugin.init``
(``init.py``), runs it on a BasicSR or MMagic teacher checkpoint and writes the student's weights with the
distillation adapters (Eq. 12) as ``checkpoint_content`` says.

The teacher is a :class:`PlainConvSR` (``conversion.convert``). Its *body* layers (those before the upsampler,
``archs.body_length``) are the distilled layers: for each, the teacher features ``F_T`` on uniformly random
inputs give, by Alg. 1, a 1x1 adapter ``M = (U[:, :r], b)`` and pseudo student features ``F_S`` with
``F_T ~ M * F_S`` (Eq. 7); the student conv of that layer is fitted by least squares to ``F_S`` from the student's
own previous features (Eq. 10-11, zero padding at the borders as at inference), followed by a ReLU. The upsampler
(the teacher's remaining layers) is copied, its first conv composed with the last adapter (Lemma 3.1, the
adapter's bias folded over the whole kernel: exact away from the border).
"""
from __future__ import annotations

import copy
from bisect import bisect_left
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from effsr_core.cost_model import CostModelError, CostTable, default_table_path, get_backend, layer_width_choice
from effsr_core.options import OptionError
from memsr_plugin.archs import PlainConvSR, body_length
from memsr_plugin.conversion import merges as m
from memsr_plugin.options import INITIALISATION

#: Alg. 1's mean-shift coefficient in the paper's experiments (the declared default of ``beta``).
PAPER_BETA = INITIALISATION['beta'].default


@dataclass(frozen=True)
class InitSettings:
    """The settings of Alg. 1, checked once against their declaration (``options.INITIALISATION``): exactly one of
    ``widths`` (fixed student widths, one per distilled layer or one for all) and ``theta`` (dynamic width: each
    layer gets the smallest width with Eq. 15 error <= theta, Sec. 3.5); ``samples`` uniformly random input patches
    of ``patch`` x ``patch`` pixels from ``seed``; ``beta`` the mean-shift coefficient (0: no shift). With
    ``device_backend`` each dynamic width moves up to the fastest width of its step there (``device_widths``)."""
    widths: tuple[int, ...] | None = None
    theta: float | None = None
    samples: int = INITIALISATION['samples'].default
    patch: int = INITIALISATION['patch'].default
    seed: int = INITIALISATION['seed'].default
    beta: float = INITIALISATION['beta'].default
    device_backend: str | None = None
    device_lr_size: tuple[int, int] = INITIALISATION['device_lr_size'].default
    device_step: int = INITIALISATION['device_step'].default
    device_table: str | None = None

    @classmethod
    def check(cls, **given) -> 'InitSettings':
        """The settings ``given`` (by option name; defaults for the others), or an ``OptionError`` (a ValueError)
        naming the option as ``name=value`` (the teacher-dependent checks come in ``winning_initialisation``)."""
        unknown = sorted(set(given) - set(INITIALISATION.names))
        if unknown:
            raise TypeError(f'InitSettings.check: unknown setting(s) {", ".join(unknown)}')
        values = {}
        for option in INITIALISATION.options:
            value = given.get(option.name, option.default)
            try:
                values[option.name] = option.check(value, option.name)
            except OptionError:
                shown = list(value) if isinstance(value, (list, tuple)) else value
                raise OptionError(f'{option.name}={shown} is outside the allowed values ({option.allowed_text()}): '
                                  f'{option.help}') from None
        INITIALISATION.validate(values, INITIALISATION.name)
        if values['device_backend'] is not None:
            try:
                get_backend(values['device_backend'])
            except CostModelError as error:
                raise OptionError(f'device_backend={values["device_backend"]}: {error}') from None
        return cls(**values)


def device_widths(settings: InitSettings, timer=None) -> Callable[[int, int], int] | None:
    """With ``settings.device_backend``: ``width_on_device(width, channels)``, the fastest width at least ``width``
    of a layer between layers of ``channels`` (``cost_model.staircase`` on a probe conv at ``device_lr_size``, the
    multiples of ``device_step``); None without a backend. ``timer`` replaces the device timing (tests)."""
    if settings.device_backend is None:
        return None
    backend = get_backend(settings.device_backend)
    try:
        table = CostTable.open(backend, settings.device_table or default_table_path(backend), timer)
    except CostModelError as error:
        raise OptionError(f'device_table={settings.device_table}: {error}') from None
    choices: dict[int, dict[int, int]] = {}

    def width_on_device(width: int, channels: int) -> int:
        if channels not in choices:
            choices[channels] = layer_width_choice(table, channels, channels, settings.device_step,
                                                   settings.device_lr_size)
        return choices[channels][width]
    return width_on_device


@dataclass
class Decomposition:
    """Alg. 1 on one layer: ``F_T ~ kernel @ F_S + bias`` (the adapter ``M``, a 1x1 conv), ``error`` of Eq. 15."""
    kernel: Tensor  # (c_t, r)
    bias: Tensor  # (c_t,)
    student: Tensor  # F_S, (n, r, h, w)
    error: float


class LayerSpectrum:
    """The SVD of one layer's centred teacher features, computed once for every width tried.

    Args:
        features: ``F_T``, (n, c_t, h, w).
        offsets: Per channel, the constant the plain teacher carries on top of the network's value (the ``C`` of
            Prop. 3.6, ``PlainConvSR.feature_offsets``); Eq. 15 divides by the norm of the values without it.
    """

    def __init__(self, features: Tensor, offsets: Tensor | None = None):
        self.shape = features.shape
        self.matrix = features.transpose(0, 1).reshape(features.shape[1], -1)
        self.mean = self.matrix.mean(dim=1)
        self.u, self.s, self.vh = torch.linalg.svd(self.matrix - self.mean[:, None], full_matrices=False)
        values = self.matrix if offsets is None else self.matrix - offsets.to(self.matrix)[:, None]
        self.norm = float(values.norm()) or 1.0

    @property
    def channels(self) -> int:
        return self.matrix.shape[0]

    def truncation_errors(self) -> list[float]:
        """Eq. 15 for every width ``r = 1..c_t`` (Eckart-Young: the energy of the dropped singular values; the
        mean shift moves F_S and the bias together, so it does not change ``M * F_S``)."""
        tail = self.s.flip(0).square().cumsum(0).flip(0)  # tail[k] = sum of s_j^2 for j >= k
        tail = torch.cat([tail, tail.new_zeros(1)])
        errors = [float(e) / self.norm for e in tail[1:].sqrt()]
        return errors + [0.0] * (self.channels - len(errors))

    def smallest_width(self, theta: float) -> int:
        """Sec. 3.5: the smallest ``r`` with Eq. 15 error <= ``theta``, by binary search (errors fall with r)."""
        errors = self.truncation_errors()
        return 1 + bisect_left([-e for e in errors], -theta)

    def decompose(self, width: int, beta: float = PAPER_BETA) -> Decomposition:
        """Alg. 1: ``F_S = S[:r, :r] Vt[:r]``, ``M = (U[:, :r], b)``; each row of F_S is shifted by ``-beta`` times
        the mean of its negative values (the student's features follow a ReLU) and ``b`` takes the opposite shift."""
        kernel = self.u[:, :width]
        student = self.s[:width, None] * self.vh[:width]
        negatives = student.clamp(max=0)
        count = (student < 0).sum(dim=1).clamp(min=1)
        gamma = -beta * negatives.sum(dim=1) / count  # 0 for a row without negative values
        student = student + gamma[:, None]
        bias = self.mean - kernel @ gamma
        error = float((kernel @ student + bias[:, None] - self.matrix).norm()) / self.norm
        n, _, h, w = self.shape
        maps = student.reshape(width, n, h, w).transpose(0, 1).contiguous()
        return Decomposition(kernel.contiguous(), bias, maps, error)


def sample_inputs(channels: int, samples: int, patch: int, seed: int) -> Tensor:
    """Alg. 1's uniformly random inputs ``F_0``, in [0, 1), float64, reproducible from ``seed``."""
    return torch.rand(samples, channels, patch, patch, dtype=torch.float64,
                      generator=torch.Generator().manual_seed(seed))


def fit_conv(inputs: Tensor, target: Tensor, kernel_size: int) -> m.ConvParams:
    """Eq. 10-11 by least squares over the samples: the conv (weights and bias) whose output on ``inputs`` (the
    student's previous features, zero padded at the borders) is closest to ``target`` (F_S)."""
    n, c, h, w = inputs.shape
    columns = F.unfold(inputs, kernel_size, padding=kernel_size // 2)  # (n, c k k, h w), channel-major like weights
    a = columns.transpose(1, 2).reshape(n * h * w, -1)
    a = torch.cat([a, a.new_ones(a.shape[0], 1)], dim=1)
    b = target.permute(0, 2, 3, 1).reshape(n * h * w, -1)
    # solves a @ X = b; gelsd (SVD) gives the minimum-norm solution where the student's features are rank
    # deficient (dead ReLU channels, widths above the teacher features' rank), where gelsy's pivoting was off
    solution = torch.linalg.lstsq(a, b, driver='gelsd').solution
    weight = solution[:-1].T.reshape(-1, c, kernel_size, kernel_size).contiguous()
    return m.ConvParams(weight, solution[-1].contiguous())


@dataclass
class WinningInitialisation:
    """The result of :func:`winning_initialisation`.

    Attributes:
        student: The initialised plain student.
        adapters: Per distilled layer, the 1x1 ``M_i`` as ``{'weight': (c_t, r, 1, 1), 'bias': (c_t,)}``, mapping
            the student's features to the teacher's (Eq. 7; the initial value of Eq. 12's trainable adapters).
        layers: The indices, in ``PlainConvSR.forward(x, return_features=True)``'s list, of the distilled layers
            (the same index in teacher and student).
        errors: Eq. 15's relative error of each distilled layer at its width.
        output_error: ``||student(x) - teacher(x)|| / ||teacher(x)||`` on the samples.
        settings: The settings used.
    """
    student: PlainConvSR
    adapters: list[dict[str, Tensor]]
    layers: list[int]
    errors: list[float]
    output_error: float
    settings: InitSettings

    @property
    def widths(self) -> list[int]:
        """Student width of each distilled layer (the student's own widths there)."""
        return self.student.widths[:len(self.layers)]


def _resolve_widths(widths: Sequence[int], channels: list[int]) -> list[int]:
    """One width for all distilled layers, or one per layer; none above the teacher layer's channels."""
    widths = [int(w) for w in widths] * (len(channels) if len(widths) == 1 else 1)
    if len(widths) != len(channels):
        raise ValueError(f'widths has {len(widths)} entries; the teacher has {len(channels)} distilled (body) '
                         f'layers: give one width per layer, or one for all')
    if too_wide := [(i, w, c) for i, (w, c) in enumerate(zip(widths, channels)) if w > c]:
        raise ValueError('widths above the teacher layer\'s channels (layer, width, channels): '
                         f'{too_wide}; Alg. 1 gives at most that many')
    return widths


def winning_initialisation(teacher: PlainConvSR, settings: InitSettings, dtype: torch.dtype = torch.float32,
                           cost_timer=None) -> WinningInitialisation:
    """Alg. 1 layer by layer on a plain teacher (computed in float64).

    Args:
        teacher: The converted teacher (``convert(net)``, in either form).
        settings: The widths or theta, the samples and beta (``InitSettings.check``).
        dtype: Parameter dtype of the returned student and adapters.
        cost_timer: How the cost table of ``settings.device_backend`` times a call (default: on the device).
    """
    widths, theta, beta = settings.widths, settings.theta, settings.beta
    teacher = copy.deepcopy(teacher).double().eval()
    body = body_length(teacher.shuffles)
    if body < 1:
        raise ValueError('the teacher has no body layer to distil (its first layer is the upsampler)')
    channels = teacher.widths[:body]
    fixed = _resolve_widths(widths, channels) if widths is not None else None
    on_device = device_widths(settings, cost_timer)
    offsets = teacher.feature_offsets or [None] * len(teacher.widths)
    convs = teacher.convs()
    inputs = sample_inputs(teacher.in_channels, settings.samples, settings.patch, settings.seed)
    fitted, adapters, chosen, errors = [], [], [], []
    with torch.no_grad():
        teacher_features = student_features = teacher.prepare_input(inputs)
        for i in range(body):
            teacher_features = teacher.run_layer(i, teacher_features)
            spectrum = LayerSpectrum(teacher_features, offsets[i])
            width = fixed[i] if fixed is not None else spectrum.smallest_width(theta)
            if on_device is not None:
                width = on_device(width, spectrum.channels)
            decomposition = spectrum.decompose(width, beta)
            params = fit_conv(student_features, decomposition.student, convs[i].kernel_size[0])
            student_features = F.relu(m.apply(params, student_features))
            fitted.append(params)
            adapters.append({'weight': decomposition.kernel[:, :, None, None], 'bias': decomposition.bias})
            chosen.append(width)
            errors.append(decomposition.error)
        adapter = m.pointwise(adapters[-1]['weight'][:, :, 0, 0], adapters[-1]['bias'])
        upsampler = [m.from_conv(conv, f'teacher layer {body + j}') for j, conv in enumerate(convs[body:])]
        upsampler[0] = m.fold_ones(m.lemma_3_1(adapter, upsampler[0]), ones_padded_with_ones=True)
        student = PlainConvSR(teacher.in_channels, chosen + teacher.widths[body:], teacher.kernel_sizes,
                              ['relu'] * body + teacher.acts[body:], teacher.shuffles, teacher.negative_slope,
                              teacher.input_ones, teacher.base_upscale).double()
        for conv, params in zip(student.convs(), fitted + upsampler):
            conv.weight.copy_(params.weight)
            conv.bias.copy_(params.bias)
        reference = teacher(inputs)
        output_error = float((student(inputs) - reference).norm() / reference.norm())
    return WinningInitialisation(student.to(dtype), [{k: v.to(dtype) for k, v in a.items()} for a in adapters],
                                 list(range(body)), errors, output_error, settings)


def checkpoint_content(result: WinningInitialisation, teacher_form: dict) -> dict:
    """What ``student_init.pth`` holds: the student's ``params`` (a BasicSR checkpoint) and architecture, the
    adapters with the layers they belong to, the teacher form to convert the teacher to for distillation."""
    return {'params': result.student.state_dict(), 'student': result.student.config(), 'adapters': result.adapters,
            'layers': result.layers, 'teacher_form': dict(teacher_form), 'widths': result.widths,
            'errors': result.errors}
