"""MemSR's winning initialisation of a plain student from a converted teacher (Sec. 3.3, Alg. 1, Eq. 5-11) with
the dynamic per-layer width of Sec. 3.5; framework-free. ``python -m memsr_plugin.init`` runs it on a BasicSR or
MMagic teacher checkpoint and writes the student's weights with the distillation adapters (Eq. 12).

The teacher is a :class:`PlainConvSR` (``conversion.convert``). Its *body* layers (those before the upsampler,
``plain.body_length``) are the distilled layers: for each, the teacher features ``F_T`` on uniformly random
inputs give, by Alg. 1, a 1x1 adapter ``M = (U[:, :r], b)`` and pseudo student features ``F_S`` with
``F_T ~ M * F_S`` (Eq. 7); the student conv of that layer is fitted by least squares to ``F_S`` from the student's
own previous features (Eq. 10-11, zero padding at the borders as at inference), followed by a ReLU. The upsampler
(the teacher's remaining layers) is copied, its first conv composed with the last adapter (Lemma 3.1, the
adapter's bias folded over the whole kernel: exact away from the border).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from effsr_core.checkpoints import atomic_write, save_atomic
from effsr_core.networks import build_model_from_options
from memsr_plugin.conversion import merges as m
from memsr_plugin.conversion.compiler import DEFAULT_OFFSET, convert
from memsr_plugin.conversion.plain import PlainConvSR, body_length
from memsr_plugin.option_files import generator_options, toolbox_of, write_derived_options

#: Alg. 1's mean-shift coefficient in the paper's experiments.
PAPER_BETA = 3.0
DEFAULT_SAMPLES = 16
DEFAULT_PATCH = 48
OUTPUT_NAME = 'student_init.pth'
SUMMARY_NAME = 'student_init.json'


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
        widths: Student width of each distilled layer.
        errors: Eq. 15's relative error of each distilled layer at its width.
        output_error: ``||student(x) - teacher(x)|| / ||teacher(x)||`` on the samples.
        settings: The arguments used.
    """
    student: PlainConvSR
    adapters: list[dict[str, Tensor]]
    layers: list[int]
    widths: list[int]
    errors: list[float]
    output_error: float
    settings: dict = field(default_factory=dict)


def check_settings(widths: Sequence[int] | None = None, theta: float | None = None, samples: int = DEFAULT_SAMPLES,
                   patch: int = DEFAULT_PATCH, beta: float = PAPER_BETA) -> None:
    """Refuse settings Alg. 1 cannot use, naming the option (the teacher-dependent checks come later)."""
    if (widths is None) == (theta is None):
        raise ValueError('give exactly one of widths (fixed per-layer widths) and theta (dynamic width, Sec. 3.5)')
    if theta is not None and not 0 < theta < 1:
        raise ValueError(f'theta={theta} is outside (0, 1); the paper uses 0.05 or 0.14')
    if widths is not None and (not widths or any(int(w) != w or w < 1 for w in widths)):
        raise ValueError(f'widths={list(widths)}: expected positive integers')
    if samples < 1 or patch < 1:
        raise ValueError(f'samples={samples}, patch={patch}: both must be positive')
    if beta < 0:
        raise ValueError(f'beta={beta} is negative')


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


def winning_initialisation(teacher: PlainConvSR, widths: Sequence[int] | None = None, theta: float | None = None,
                           samples: int = DEFAULT_SAMPLES, patch: int = DEFAULT_PATCH, seed: int = 0,
                           beta: float = PAPER_BETA, dtype: torch.dtype = torch.float32) -> WinningInitialisation:
    """Alg. 1 layer by layer on a plain teacher (computed in float64).

    Args:
        teacher: The converted teacher (``convert(net)``, in either form).
        widths: Fixed student widths, one per distilled layer (or one for all).
        theta: Instead of ``widths``: each layer gets the smallest width with Eq. 15 error <= theta (Sec. 3.5).
        samples: Number of uniformly random input patches, in [0, 1).
        patch: Their height and width.
        seed: Seed of the inputs.
        beta: Mean-shift coefficient of Alg. 1 (0: no shift).
        dtype: Parameter dtype of the returned student and adapters.
    """
    check_settings(widths, theta, samples, patch, beta)
    teacher = copy.deepcopy(teacher).double().eval()
    body = body_length(teacher.shuffles)
    if body < 1:
        raise ValueError('the teacher has no body layer to distil (its first layer is the upsampler)')
    channels = teacher.widths[:body]
    fixed = _resolve_widths(widths, channels) if widths is not None else None
    offsets = teacher.feature_offsets or [None] * len(teacher.widths)
    convs = teacher.convs()
    inputs = sample_inputs(teacher.in_channels, samples, patch, seed)
    fitted, adapters, chosen, errors = [], [], [], []
    with torch.no_grad():
        teacher_features = student_features = teacher.prepare_input(inputs)
        for i in range(body):
            teacher_features = teacher.run_layer(i, teacher_features)
            spectrum = LayerSpectrum(teacher_features, offsets[i])
            width = fixed[i] if fixed is not None else spectrum.smallest_width(theta)
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
    settings = {'widths': None if widths is None else list(widths), 'theta': theta, 'samples': samples,
                'patch': patch, 'seed': seed, 'beta': beta}
    return WinningInitialisation(student.to(dtype), [{k: v.to(dtype) for k, v in a.items()} for a in adapters],
                                 list(range(body)), chosen, errors, output_error, settings)


def checkpoint_content(result: WinningInitialisation, teacher_form: dict) -> dict:
    """What ``student_init.pth`` holds: the student's ``params`` (a BasicSR checkpoint) and architecture, the
    adapters with the layers they belong to, the teacher form to convert the teacher to for distillation."""
    return {'params': result.student.state_dict(), 'student': result.student.config(), 'adapters': result.adapters,
            'layers': result.layers, 'teacher_form': dict(teacher_form), 'widths': result.widths,
            'errors': result.errors}


def format_table(result: WinningInitialisation, teacher_widths: Sequence[int]) -> str:
    """Per distilled layer: teacher channels, student width, Eq. 15 error; then the upsampler and output error."""
    lines = [f'{"layer":>5}  {"teacher":>7}  {"width":>5}  {"error":>9}']
    for layer, width, error in zip(result.layers, result.widths, result.errors):
        lines.append(f'{layer:>5}  {teacher_widths[layer]:>7}  {width:>5}  {error:>9.3e}')
    body = len(result.layers)
    lines.append(f'upsampler: teacher layers {body}-{len(teacher_widths) - 1} copied, layer {body} composed with the '
                 f'last adapter')
    lines.append(f'student output vs teacher (relative, on the samples): {result.output_error:.3e}')
    return '\n'.join(lines)


EXAMPLE = ('example:\n'
           '  python -m memsr_plugin.init -opt options/teacher_edsr_x4.yml --checkpoint edsr_x4.pth --theta 0.05 \\\n'
           '      --output experiments/plain_x4_init')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m memsr_plugin.init', formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLE,
        description='MemSR winning initialisation (Alg. 1): convert a teacher to its plain form and derive a\n'
                    'plain student, its per-layer widths and the distillation adapters.')
    parser.add_argument('-opt', '--options', required=True,
                        help='teacher: a BasicSR options YAML (network_g) or an MMagic config .py (model.generator)')
    parser.add_argument('--checkpoint', required=True, help='teacher weights (BasicSR params / MMagic state_dict)')
    parser.add_argument('--param-key', default=None, help='checkpoint entry to read (default: params_ema, params '
                                                          'or state_dict)')
    width = parser.add_mutually_exclusive_group(required=True)
    width.add_argument('--theta', type=float, help='dynamic width: the smallest width per layer with relative error '
                                                   '<= theta (Sec. 3.5; the paper uses 0.05 or 0.14)')
    width.add_argument('--widths', type=int, nargs='+', help='fixed student widths, one per teacher body layer, or '
                                                             'one for all')
    parser.add_argument('--output', required=True, help=f'folder for {OUTPUT_NAME} and {SUMMARY_NAME}')
    parser.add_argument('--samples', type=int, default=DEFAULT_SAMPLES, help='number of random input patches')
    parser.add_argument('--patch', type=int, default=DEFAULT_PATCH, help='height and width of the input patches')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random inputs')
    parser.add_argument('--beta', type=float, default=PAPER_BETA, help='mean-shift coefficient of Alg. 1 (0: none)')
    parser.add_argument('--teacher-form', choices=('relu-body', 'own-activations'), default='relu-body',
                        help="relu-body: the paper's plain teacher, conv+ReLU in every body layer (carried values "
                             "+C); own-activations: block outputs keep no activation")
    parser.add_argument('--offset', type=float, default=DEFAULT_OFFSET,
                        help='the constant C that carries values through a ReLU (exact while they exceed -C)')
    parser.add_argument('--distill-options', default=None, metavar='TEMPLATE',
                        help='also write distillation options for this student: TEMPLATE (a MemSRDistillModel YAML '
                             'or MemSRDistillEditor config of the same toolbox as -opt) with the student, teacher, '
                             'their weights and the initialisation file filled in, as OUTPUT/NAME.yml|.py')
    parser.add_argument('--name', default=None, help="experiment name of those options (default: the template's "
                                                     "file name)")
    return parser


def _check_template(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The distillation template must be readable and of the teacher's toolbox (checked before any work)."""
    if args.name is not None and args.distill_options is None:
        parser.error('argument --name: only used with --distill-options')
    if args.distill_options is None:
        return
    try:
        template, teacher = toolbox_of(args.distill_options), toolbox_of(args.options)
    except (ValueError, FileNotFoundError) as error:
        parser.error(f'argument --distill-options: {error}')
    if template != teacher:
        parser.error(f'argument --distill-options: a {template} template for a {teacher} teacher (-opt); use one '
                     f'of the same toolbox')


def write_distill_options(args: argparse.Namespace, student: dict, init_file: Path) -> Path:
    """The template with this student, the teacher of ``-opt`` and their files filled in."""
    student = {'type': 'PlainConvSR', **student}
    teacher = generator_options(args.options)
    name = args.name or Path(args.distill_options).stem
    return write_derived_options(
        args.distill_options, args.output, name,
        basicsr={'network_g': student, 'network_t': teacher, 'path.pretrain_network_g': str(init_file),
                 'path.pretrain_network_t': args.checkpoint, 'distill.init_file': str(init_file)},
        mmagic={'model.generator': student, 'model.teacher': teacher, 'model.teacher_checkpoint': args.checkpoint,
                'model.distill.init_file': str(init_file)})


def main(argv: Sequence[str] | None = None) -> WinningInitialisation:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_template(parser, args)
    teacher_form = {'relu_body': args.teacher_form == 'relu-body', 'offset': args.offset}
    try:
        check_settings(args.widths, args.theta, args.samples, args.patch, args.beta)
        network = build_model_from_options(args.options, args.checkpoint, args.param_key)
        teacher = convert(network, dtype=torch.float64, **teacher_form)
        result = winning_initialisation(teacher, args.widths, args.theta, args.samples, args.patch, args.seed,
                                        args.beta)
    except (ValueError, FileNotFoundError) as error:  # settings, options, checkpoint or conversion refused
        parser.error(str(error))
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    save_atomic(checkpoint_content(result, teacher_form), output / OUTPUT_NAME)
    summary = {'widths': result.widths, 'errors': result.errors, 'layers': result.layers,
               'teacher_channels': teacher.widths[:len(result.layers)], 'output_error': result.output_error,
               'student': result.student.config(), 'teacher_form': teacher_form,
               'settings': {**result.settings, 'options': args.options, 'checkpoint': args.checkpoint}}
    with atomic_write(output / SUMMARY_NAME, 'w') as stream:
        json.dump(summary, stream, indent=2)
    print(format_table(result, teacher.widths))
    print(f'wrote {output / OUTPUT_NAME} and {output / SUMMARY_NAME}')
    if args.distill_options is not None:
        print(f'wrote {write_distill_options(args, result.student.config(), output / OUTPUT_NAME)}')
    return result


if __name__ == '__main__':
    main(sys.argv[1:])
