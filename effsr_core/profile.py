"""Command line: profile and rank one or more networks the NTIRE efficient-SR way.

Usage::

    python -m effsr_core.profile -opt A.yml [--ckpt A.pth] [--name A] [-opt B.py ...] [--model NAME=OPTIONS[:CKPT]]
        [--input-size 3x256x256 | --lr-size 180x320 --frames 10] [--video | --image] [--exclude spynet]
        [--device cpu|cuda] [--backend eager|torchscript|onnxruntime|openvino]
        [--runtime-trials 3] [--runtime-repeats 1] [--warmup 1] [--threads N]
        [--skip memory runtime] [--dataset-gt DIR --dataset-lq DIR [--dataset-template {}x4]
        [--dataset-clips 000 011] [--dataset-frames N]] [--crop-border 4] [--test-y-channel] [--allow-mixed-sizes]
        [--score ntire2024|ntire2025|ntire2026 [--score-baseline NAME]] [--json out.json]
        [--plot out.png [--plot-baseline NAME]]

Video models (a BasicSR ``model_type`` deriving from VideoBaseModel, an MMagic ``model.type`` with 'VSR', or
``--video``) get a
(1, frames, c, h, w) input and report per-frame numbers with the sub-modules named ``spynet`` counted apart. Models
given different input sizes are ranked together only with ``--allow-mixed-sizes``; progress lines go to stderr.
``--backend`` times the networks (and measures their memory) under TorchScript, ONNX Runtime or OpenVINO instead of
PyTorch eager; every network is converted and checked against eager before the first measurement. ``--plot``
draws every model's costs (and PSNR) against a baseline model (``effsr_core.profiling.plot``, whose command line
``python -m effsr_core.profiling.plot out.json --plot out.png`` redraws a JSON report without measuring again).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from effsr_core import compat
from effsr_core.command_line import (build_network, check_output_file, is_video_network, parse_frame_size,
                                     parse_image_size, parse_positive, say)
from effsr_core.cost_model import CostModelError, CostTable, default_table_path, get_backend, predict_latency
from effsr_core.profiling.backends import BACKENDS, BackendError, CompiledNetwork, check_backend, compile_network
from effsr_core.profiling.counting import find_excluded_modules
from effsr_core.profiling.plot import baseline_problem, plot_comparison
from effsr_core.profiling.profiler import ProfileSettings, profile_model
from effsr_core.profiling.quality import PairedImageFolders, VideoClipFolders
from effsr_core.profiling.ranking import format_ranking, rank_models
from effsr_core.profiling.report import build_report, format_table, format_versus_first, write_json
from effsr_core.profiling.scoring import PROTOCOLS, describe, format_scores, score_models

DEFAULT_VIDEO_EXCLUDE = ('spynet',)
EXAMPLE = ('example:\n'
           '  python -m effsr_core.profile --model A=a.yml:a.pth --model B=b.py:b.pth --lr-size 180x320 \\\n'
           '      --frames 10 --dataset-gt val/GT --dataset-lq val/LQ --json out.json')


@dataclass
class ModelSpec:
    """One model to profile: options file, optional checkpoint and display name."""
    options: str
    checkpoint: str | None = None
    name: str | None = None


def parse_model_spec(text: str) -> ModelSpec:
    """Parse 'NAME=OPTIONS[:CKPT]'."""
    name, separator, rest = text.partition('=')
    options, _, checkpoint = rest.partition(':')
    if not separator or not name or not options:
        raise argparse.ArgumentTypeError(f'expected NAME=OPTIONS[:CKPT], got {text!r}')
    return ModelSpec(options=options, checkpoint=checkpoint or None, name=name)


class _ModelSpecAction(argparse.Action):
    """Collects models in order: ``-opt`` (or ``--model``) starts one; ``--ckpt`` / ``--name`` complete the last."""

    def __call__(self, parser, namespace, values, option_string=None):
        specs = getattr(namespace, self.dest) or []
        setattr(namespace, self.dest, specs)
        if isinstance(values, ModelSpec):
            specs.append(values)
        elif self.const == 'options':
            specs.append(ModelSpec(options=values))
        elif not specs or getattr(specs[-1], self.const) is not None:
            parser.error(f'argument {option_string}: give it once after its -opt/--options')
        else:
            setattr(specs[-1], self.const, values)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the profiler CLI."""
    parser = argparse.ArgumentParser(prog='python -m effsr_core.profile', description=__doc__.split('\n')[0],
                                     epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    models = parser.add_argument_group('models (repeatable, profiled and ranked together)')
    models.add_argument('-opt', '--options', dest='models', action=_ModelSpecAction, const='options',
                        metavar='OPTIONS', help='BasicSR options YAML (network_g) or MMagic config .py')
    models.add_argument('--ckpt', dest='models', action=_ModelSpecAction, const='checkpoint', metavar='CKPT',
                        help='checkpoint for the preceding -opt')
    models.add_argument('--name', dest='models', action=_ModelSpecAction, const='name', metavar='NAME',
                        help='display name for the preceding -opt (default: options file stem)')
    models.add_argument('--model', dest='models', action=_ModelSpecAction, type=parse_model_spec,
                        metavar='NAME=OPTIONS[:CKPT]', help='a model in one argument')
    models.add_argument('--param-key', metavar='KEY',
                        help='checkpoint entry to load (default: params_ema, params or state_dict)')

    inputs = parser.add_argument_group('input')
    inputs.add_argument('--input-size', type=parse_image_size, default=(3, 256, 256), metavar='CxHxW',
                        help='image-model input (default 3x256x256, the NTIRE FLOPs/activations size)')
    inputs.add_argument('--lr-size', type=parse_frame_size, default=(3, 180, 320), metavar='[Cx]HxW',
                        help='video-model LR frame size (default 180x320)')
    inputs.add_argument('--frames', type=parse_positive, default=10, metavar='T',
                        help='video-model frames (default 10)')
    kind = inputs.add_mutually_exclusive_group()
    kind.add_argument('--video', dest='force_video', action='store_const', const=True,
                      help='treat every model as a video model')
    kind.add_argument('--image', dest='force_video', action='store_const', const=False,
                      help='treat every model as an image model')

    measure = parser.add_argument_group('measurement')
    measure.add_argument('--exclude', nargs='*', metavar='MODULE',
                         help=f'sub-modules counted apart (default: {" ".join(DEFAULT_VIDEO_EXCLUDE)} for video '
                              f'models, none for image models; no name: count everything together)')
    measure.add_argument('--device', choices=('cpu', 'cuda'), default='cuda' if torch.cuda.is_available() else 'cpu',
                         help='device the models run on (default: cuda when available, else cpu)')
    measure.add_argument('--backend', choices=BACKENDS, default='eager',
                         help='what runs the timed and memory forwards (default eager; onnxruntime and openvino: '
                              'CPU only, through the ONNX export); counts and PSNR always use PyTorch')
    measure.add_argument('--runtime-trials', type=parse_positive, default=3, metavar='N',
                         help='best of N trials (default 3)')
    measure.add_argument('--runtime-repeats', type=parse_positive, default=1, metavar='N',
                         help='forwards per trial (default 1)')
    measure.add_argument('--warmup', type=int, default=1, metavar='N', help='untimed forwards first (default 1)')
    measure.add_argument('--threads', type=parse_positive, metavar='N',
                         help='torch CPU threads (default: torch default)')
    measure.add_argument('--skip', nargs='+', choices=('memory', 'runtime'), default=(), help='measures to skip')
    measure.add_argument('--predict-latency', action='store_true',
                         help='also predict each model\'s runtime with the device cost model (eager backend; the '
                              'table is measured on first use and cached per device key, docs/cost_model.md)')
    measure.add_argument('--cost-table', metavar='PATH',
                         help='the cost table file of --predict-latency (default: ~/.cache/effsr/cost_tables/...)')

    dataset = parser.add_argument_group('PSNR / SSIM (optional)')
    dataset.add_argument('--dataset-gt', metavar='DIR', help='GT images (image models) or GT clip folders (video)')
    dataset.add_argument('--dataset-lq', metavar='DIR', help='LQ images or LQ clip folders')
    dataset.add_argument('--dataset-template', default='{}x4', metavar='TEMPLATE',
                         help="LQ stem from the GT stem for images (default '{}x4', DIV2K)")
    dataset.add_argument('--dataset-clips', nargs='+', metavar='CLIP', help='video clips (default: all folders)')
    dataset.add_argument('--dataset-frames', type=parse_positive, metavar='N',
                         help='first N frames of each video clip (default: all)')
    dataset.add_argument('--crop-border', type=int, default=4, metavar='N',
                         help='border removed before measuring (default 4)')
    dataset.add_argument('--test-y-channel', action='store_true', help='measure on Y of YCbCr instead of RGB')

    output = parser.add_argument_group('ranking and output')
    output.add_argument('--allow-mixed-sizes', action='store_true',
                        help='rank models given different input sizes (default: refuse before measuring)')
    output.add_argument('--score', choices=tuple(PROTOCOLS),
                        help='also score the models by that NTIRE year (weighted exp(2*x/x_base) of runtime, fvcore '
                             'FLOPs and params; models under its PSNR threshold, when a dataset is given, not ranked)')
    output.add_argument('--score-baseline', metavar='NAME',
                        help="a profiled model whose measured figures are the --score baseline (recommended: the "
                             "year's official runtime was measured on another GPU; default: the official figures)")
    output.add_argument('--json', metavar='PATH', help='write the report as JSON here')
    output.add_argument('--plot', metavar='FILE.png',
                        help='also draw the models against a baseline: costs as model / baseline, PSNR difference '
                             '(its folder must exist)')
    output.add_argument('--plot-baseline', metavar='NAME',
                        help='the profiled model the --plot divides by (default: the first model)')
    return parser


def _model_name(spec: ModelSpec) -> str:
    return spec.name or Path(spec.options).stem


def _check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject inconsistent arguments with a message naming the option."""
    if not args.models:
        parser.error('argument -opt/--options: give at least one model (-opt OPTIONS or --model NAME=OPTIONS)')
    names = [_model_name(spec) for spec in args.models]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        parser.error(f'argument --name: duplicate model names {", ".join(duplicates)}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('argument --device: CUDA is not available')
    if (args.dataset_gt is None) != (args.dataset_lq is None):
        parser.error('argument --dataset-gt/--dataset-lq: give both folders')
    if args.warmup < 0:
        parser.error('argument --warmup: must be >= 0')
    if args.score_baseline is not None and args.score is None:
        parser.error('argument --score-baseline: needs --score')
    if args.score_baseline is not None and args.score_baseline not in names:
        parser.error(f'argument --score-baseline: no profiled model is named {args.score_baseline!r} '
                     f'(models: {", ".join(names)})')
    if args.plot_baseline is not None and args.plot is None:
        parser.error('argument --plot-baseline: needs --plot')
    if args.plot is not None:
        check_output_file(parser, '--plot', args.plot, '.png')
        if len(names) < 2:
            parser.error('argument --plot: a comparison needs two models or more')
        problem = baseline_problem(names, args.plot_baseline)
        if problem:
            parser.error(f'argument --plot-baseline: {problem}')
    problem = check_backend(args.backend, args.device)
    if problem:
        parser.error(f'argument --backend: {problem}')
    if args.cost_table is not None and not args.predict_latency:
        parser.error('argument --cost-table: needs --predict-latency')
    if args.predict_latency and args.backend != 'eager':
        parser.error(f'argument --predict-latency: the cost model predicts the eager backend, not {args.backend}')
    if args.predict_latency:
        try:
            _cost_table(args)
        except CostModelError as error:
            parser.error(f'argument --cost-table: {error}')
    if args.score is not None and 'runtime' in args.skip:
        parser.error('argument --score: the score needs the runtime; do not pass --skip runtime')


def _cost_table(args: argparse.Namespace) -> CostTable:
    """The cost table of --predict-latency: eager NCHW on the chosen device (what the profiler's eager runs)."""
    backend = get_backend('cuda-eager-nchw' if args.device == 'cuda' else 'eager-nchw')
    return CostTable.open(backend, args.cost_table or default_table_path(backend))


def _make_dataset(parser: argparse.ArgumentParser, args: argparse.Namespace, video: bool):
    """The PSNR / SSIM samples for this kind of model, or None without --dataset-gt."""
    if args.dataset_gt is None:
        return None
    try:
        if video:
            return VideoClipFolders(args.dataset_gt, args.dataset_lq, args.dataset_clips, args.dataset_frames)
        return PairedImageFolders(args.dataset_gt, args.dataset_lq, args.dataset_template)
    except FileNotFoundError as error:
        parser.error(f'argument --dataset-gt/--dataset-lq: {error}')


@dataclass(frozen=True)
class ModelPlan:
    """How one model will be measured, decided from its options file before anything is built."""
    spec: ModelSpec
    name: str
    video: bool
    shape: tuple[int, ...]
    exclude: tuple[str, ...]

    @property
    def size(self) -> tuple[int, ...]:
        """(frames, c, h, w), one frame for an image model: models of equal sizes are ranked together."""
        return self.shape[1:] if self.video else (1, *self.shape[1:])

    def describe_size(self) -> str:
        """The input size in words, e.g. '10 frames of 3x64x64' or '3x256x256'."""
        frame = 'x'.join(map(str, self.size[1:]))
        return f'{self.size[0]} frames of {frame}' if self.video else frame


def _plan(parser: argparse.ArgumentParser, args: argparse.Namespace, spec: ModelSpec) -> ModelPlan:
    """The input kind, shape and excluded sub-modules of one model, from its options file and the arguments."""
    video = is_video_network(parser, spec.options) if args.force_video is None else args.force_video
    shape = (1, args.frames, *args.lr_size) if video else (1, *args.input_size)
    exclude = tuple(args.exclude) if args.exclude is not None else (DEFAULT_VIDEO_EXCLUDE if video else ())
    return ModelPlan(spec=spec, name=_model_name(spec), video=video, shape=shape, exclude=exclude)


def _check_sizes(parser: argparse.ArgumentParser, args: argparse.Namespace, plans: Sequence[ModelPlan]) -> None:
    """Refuse to rank models given different input sizes unless --allow-mixed-sizes."""
    if args.allow_mixed_sizes or len({plan.size for plan in plans}) <= 1:
        return
    sizes = ', '.join(f'{plan.name}: {plan.describe_size()}' for plan in plans)
    parser.error(f'argument --input-size/--lr-size/--frames: models given different input sizes cannot be ranked '
                 f'({sizes}); give them one size or pass --allow-mixed-sizes')


def _build(parser: argparse.ArgumentParser, args: argparse.Namespace, plan: ModelPlan) -> torch.nn.Module:
    """Build one model and load its checkpoint (then its deployed form when it has ``to_plain()``); argument
    errors name the option."""
    model, deployed = build_network(parser, plan.spec.options, plan.spec.checkpoint, args.param_key, '--ckpt')
    if deployed:  # trained in a re-parameterisable form: measure what deploys
        say(f'{plan.name}: measured in its deployed form ({type(model).__name__}, from to_plain())')
    if args.exclude and not find_excluded_modules(model, plan.exclude):
        say(f'warning: --exclude {" ".join(plan.exclude)} matches no sub-module of {plan.name}')
    return model


def _compile(parser: argparse.ArgumentParser, args: argparse.Namespace, plan: ModelPlan, model: torch.nn.Module,
             inputs: torch.Tensor) -> CompiledNetwork:
    """The model prepared for --backend on its input; a model that cannot run there stops the run (one line)."""
    try:
        return compile_network(model.to(inputs.device), inputs, args.backend)
    except BackendError as error:
        parser.error(f'argument --backend: {plan.name}: {error}')


def _measure(args: argparse.Namespace, plan: ModelPlan, model: torch.nn.Module, compiled: CompiledNetwork,
             inputs: torch.Tensor, dataset: PairedImageFolders | VideoClipFolders | None, position: str) -> dict:
    """Profile one built model on its random input; ``position`` ('n/N') prefixes the progress lines."""
    settings = ProfileSettings(exclude=plan.exclude, measure_memory='memory' not in args.skip,
                               measure_runtime='runtime' not in args.skip, trials=args.runtime_trials,
                               repeats=args.runtime_repeats, warmup=args.warmup, crop_border=args.crop_border,
                               test_y_channel=args.test_y_channel, backend=args.backend)
    result = profile_model(model, inputs, settings, dataset, compiled=compiled,
                           progress=lambda step, index, total: say(f'[{position}] {plan.name}: {step} '
                                                                   f'({index}/{total})'))
    return {'checkpoint': plan.spec.checkpoint, **result}


def main(argv: Sequence[str] | None = None) -> int:
    """Profile the given models, print the table (and ranking) and optionally write JSON.

    Everything that can be checked (options, input sizes, datasets, checkpoints) is checked before measuring.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        Exit status 0; argument errors exit with status 2 and a message naming the option.
    """
    compat.install()
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_arguments(parser, args)
    if args.threads:
        torch.set_num_threads(args.threads)
    plans = [_plan(parser, args, spec) for spec in args.models]
    _check_sizes(parser, args, plans)
    datasets = {video: _make_dataset(parser, args, video) for video in {plan.video for plan in plans}}
    models = []
    for number, plan in enumerate(plans, 1):
        say(f'[{number}/{len(plans)}] {plan.name}: building')
        models.append(_build(parser, args, plan))
        if args.dataset_gt is not None and not plan.spec.checkpoint:
            say(f'warning: {plan.name} has no checkpoint (--ckpt): its PSNR/SSIM are those of a randomly '
                f'initialised network')
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.rand(plan.shape, generator=generator).to(args.device) for plan in plans]
    if args.backend != 'eager':
        say(f'converting {len(plans)} model{"s" * (len(plans) != 1)} for {args.backend}')
    compiled = [_compile(parser, args, plan, model, x) for plan, model, x in zip(plans, models, inputs)]
    results = {}
    for number, (plan, model, network, x) in enumerate(zip(plans, models, compiled, inputs), 1):
        try:
            results[plan.name] = _measure(args, plan, model, network, x, datasets[plan.video],
                                          f'{number}/{len(plans)}')
        except BackendError as error:  # a compiled network whose results differ from eager's
            parser.error(f'argument --backend: {plan.name}: {error}')
    if args.predict_latency:
        table = _cost_table(args)
        for number, (plan, model) in enumerate(zip(plans, models), 1):
            say(f'[{number}/{len(plans)}] {plan.name}: predicting the latency ({table.backend.name})')
            prediction = predict_latency(model, plan.shape, table)
            results[plan.name]['predicted'] = {'ms': prediction.per_frame_ms, 'backend': table.backend.name,
                                               'table': str(table.path), 'unpriced': list(prediction.unreplayable)}
    print(format_table(results))
    if len(results) > 1:
        print(f'\n{format_versus_first(results)}')
    ranking = rank_models(results) if len(results) > 1 else None
    if ranking:
        mixed = '; input sizes differ' if len({plan.size for plan in plans}) > 1 else ''
        print(f'\nNTIRE ranking (sum of ranks on {", ".join(ranking.metrics)}; lower is better{mixed}):')
        print(format_ranking(ranking))
    score = score_models(results, args.score, args.score_baseline) if args.score else None
    if score:
        print(f'\n{describe(score)}')
        print(format_scores(score))
    if args.json:
        command = [*parser.prog.split(), *(sys.argv[1:] if argv is None else argv)]
        write_json(build_report(results, ranking, command, score), args.json)
        print(f'\nWrote {args.json}')
    if args.plot:
        plot_comparison(results, args.plot, args.plot_baseline)
        print(f'\nWrote {args.plot}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
