"""MemSR efficiency on CPU at 1920x1080 output (the paper's Table 4 protocol), x4 and x2.

Per scale: BasicSR's EDSR (64 features x 16 blocks, the "EDSR" row of Table 4) and the paper's Teacher-M (the same
backbone with a one-conv pixel-shuffle upsampler, ``EDSRPixelShuffle``), each with its exact plain form
(``memsr_plugin.conversion.convert``, equivalence checked in float64 before measuring), and the plain students
made from Teacher-M by Alg. 1 (``winning_initialisation``): Plain-M (width 64 everywhere) and Plain-X (dynamic width,
theta 0.14 and 0.05). For each: parameters, MACs / FLOPs, activations, #conv (NTIRE counting), peak inference
memory (live tensor storages of one forward: parameters + buffers + input + every op output until freed) and the
CPU runtime: all networks of a scale timed in ``--rounds`` interleaved rounds (round r runs each once, after one
warm-up forward each; each forward is a full 1080p image), median per network, so that a machine busier at one
moment slows every network alike.

No trained Teacher-M exists here, so the teachers have seeded random weights: parameters, operations, memory and
runtime do not depend on them, but Plain-X's widths do (Alg. 1 on a trained teacher chooses other widths; pass
``--teacher-checkpoint SCALE=PATH`` with a trained ``EDSRPixelShuffle`` to use one).

    OMP_NUM_THREADS=2 python benchmarks/memsr_efficiency.py        # writes benchmarks/results/memsr_efficiency_cpu.*
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

from basicsr.archs.edsr_arch import EDSR
from effsr_core.checkpoints import load_weights, read_generator_state
from effsr_core.profiling.profiler import ProfileSettings, profile_model
from effsr_core.profiling.report import machine_info
from effsr_core.profiling.timing import interleaved_runtimes
import memsr_plugin.basicsr.conversion  # noqa: F401  (BasicSR's EDSR becomes convertible)
from memsr_plugin.archs import EDSRPixelShuffle
from memsr_plugin.conversion import PlainConvSR, convert
from memsr_plugin.conversion.equivalence import measure_equivalence
from memsr_plugin.winning_init import InitSettings, winning_initialisation
from training_runs import write_report_files

RESULTS = Path(__file__).parent / 'results'
OUTPUT = (1080, 1920)
TEACHER_M = {'num_feat': 64, 'num_block': 16}
THETAS = (0.14, 0.05)
MEMORY_TARGET = 0.25  # the target: Plain-M peak <= 0.25 x the EDSR teacher's (paper: 161 / 1,108 MB)


def teacher_networks(scale: int, seed: int, checkpoint: str | None) -> dict[str, nn.Module]:
    torch.manual_seed(seed)
    edsr = EDSR(3, 3, upscale=scale, **TEACHER_M).eval()
    teacher = EDSRPixelShuffle(upscale=scale, **TEACHER_M).eval()
    if checkpoint:
        load_weights(teacher, read_generator_state(checkpoint), checkpoint)
    return {'EDSR (BasicSR)': edsr, 'Teacher-M (EDSRPixelShuffle)': teacher}


def checked_plain(net: nn.Module, seed: int) -> tuple[PlainConvSR, dict]:
    """The exact plain form in float32, after the float64 equivalence check on two 24x24 random images."""
    plain64, plain32 = convert(net, dtype=torch.float64), convert(net)
    inputs = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    check = measure_equivalence(net, plain64, plain32, inputs, offset=1000.0)
    if not check.exact:
        raise SystemExit(f'{type(net).__name__}: the plain form is not equivalent: {check.describe()}')
    return plain32, vars(check)


def students(teacher: nn.Module, seed: int, samples: int, patch: int) -> dict[str, tuple[PlainConvSR, dict]]:
    """Plain-M and Plain-X by Alg. 1 on the teacher's plain form (the paper's: conv + ReLU in every body layer)."""
    plain = convert(teacher, dtype=torch.float64, relu_body=True)
    sampling = {'samples': samples, 'patch': patch, 'seed': seed}
    made = {'Plain-M': winning_initialisation(plain, InitSettings.check(widths=[64], **sampling))}
    for theta in THETAS:
        made[f'Plain-X (theta {theta})'] = winning_initialisation(plain, InitSettings.check(theta=theta, **sampling))
    return {name: (result.student.float().eval(), {'widths': result.widths, 'errors': result.errors})
            for name, result in made.items()}


def measure(name: str, net: nn.Module, inputs: torch.Tensor) -> dict:
    """Parameters, operations and peak memory (the runtime is timed later, interleaved)."""
    result = profile_model(net, inputs, ProfileSettings(measure_runtime=False, use_meta=True))
    print(f'  {name}: {result["memory"]["peak_bytes"] / 2 ** 20:.0f} MiB', flush=True)
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scales', type=int, nargs='+', default=[4, 2])
    parser.add_argument('--rounds', type=int, default=3, help='interleaved timing rounds (median reported)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--samples', type=int, default=16, help='Alg. 1: random input patches')
    parser.add_argument('--patch', type=int, default=48, help='Alg. 1: patch size')
    parser.add_argument('--teacher-checkpoint', action='append', default=[], metavar='SCALE=PATH',
                        help='trained EDSRPixelShuffle weights for one scale (default: seeded random weights)')
    parser.add_argument('--quick', action='store_true', help='a 216x384 output smoke run (not for the results)')
    parser.add_argument('--out', default=str(RESULTS / 'memsr_efficiency_cpu'))
    args = parser.parse_args(argv)
    checkpoints = dict(item.split('=', 1) for item in args.teacher_checkpoint)
    output = (216, 384) if args.quick else OUTPUT
    started, load_before = time.time(), os.getloadavg()
    report = {'machine': machine_info(), 'command': [sys.executable, *sys.argv], 'output_size': list(output),
              'rounds': args.rounds, 'seed': args.seed, 'alg1': {'samples': args.samples, 'patch': args.patch},
              'teacher_checkpoints': checkpoints, 'scales': {}}
    for scale in args.scales:
        inputs = torch.rand(1, 3, output[0] // scale, output[1] // scale, generator=torch.Generator().manual_seed(0))
        print(f'x{scale}: LR {inputs.shape[2]}x{inputs.shape[3]}', flush=True)
        rows, networks = {}, {}
        for name, net in teacher_networks(scale, args.seed, checkpoints.get(str(scale))).items():
            plain, check = checked_plain(net, args.seed)
            networks[name], networks[f'{name}, exact plain form'] = net, plain
            rows[name] = measure(name, net, inputs)
            rows[f'{name}, exact plain form'] = {**measure(f'{name}, exact plain form', plain, inputs),
                                                 'equivalence': check, 'widths': plain.widths}
        teacher = networks['Teacher-M (EDSRPixelShuffle)']
        for name, (student, made) in students(teacher, args.seed, args.samples, args.patch).items():
            networks[name] = student
            rows[name] = {**measure(name, student, inputs), **made}
        timed = time.time()
        for name, runtime in interleaved_runtimes(networks, inputs, args.rounds).items():
            rows[name]['runtime'] = runtime
        print(f'  timed {len(networks)} networks in {args.rounds} interleaved rounds ({time.time() - timed:.0f} s)',
              flush=True)
        report['scales'][str(scale)] = rows
    report['wall_seconds'] = time.time() - started
    report['load_average'] = {'before': load_before, 'after': os.getloadavg()}
    write_report_files(Path(args.out), report, markdown)
    print(markdown(report))


def markdown(report: dict) -> str:
    m = report['machine']
    h, w = report['output_size']
    lines = [f'# MemSR efficiency, CPU ({m["cpu"]}, {m["threads"]} threads, torch {m["torch"]})', '',
             f'Command: `{" ".join(report["command"])}`  ',
             f'Output {w}x{h} (one image per forward); runtime = median of {report["rounds"]} interleaved rounds '
             f'(each network once per round, after one warm-up forward each); peak memory = live tensor storages of '
             f'one forward (parameters included). Load average '
             f'before / after: {report["load_average"]["before"][0]:.2f} / {report["load_average"]["after"][0]:.2f}. '
             f'Wall time {report["wall_seconds"] / 60:.1f} min.', '']
    for scale, rows in report['scales'].items():
        edsr = rows['EDSR (BasicSR)']
        lines += [f'## x{scale}', '',
                  '| network | params K | GMACs | NTIRE GFLOPs | activations M | #conv | peak MiB | vs EDSR | '
                  'median ms | vs EDSR |', '|---|---|---|---|---|---|---|---|---|---|']
        for name, r in rows.items():
            ops, peak, ms = r['ops']['counted'], r['memory']['peak_bytes'], r['runtime']['median_ms']
            lines.append(f'| {name} | {r["params"]["total"] / 1e3:,.0f} | {ops["macs"] / 1e9:.0f} | '
                         f'{ops["ntire_flops"] / 1e9:.0f} | {ops["activations"] / 1e6:.0f} | {ops["num_conv"]:.0f} | '
                         f'{peak / 2 ** 20:,.0f} | {peak / edsr["memory"]["peak_bytes"]:.2f}x | {ms:,.0f} | '
                         f'{ms / edsr["runtime"]["median_ms"]:.2f}x |')
        plain_m = rows['Plain-M']['memory']['peak_bytes'] / edsr['memory']['peak_bytes']
        verdict = 'met' if plain_m <= MEMORY_TARGET else 'missed'
        lines += ['', f'Target Plain-M peak <= {MEMORY_TARGET} x EDSR: {plain_m:.2f}x, {verdict}. Plain-X widths '
                  f'(theta 0.14): {rows["Plain-X (theta 0.14)"]["widths"]}; (theta 0.05): '
                  f'{rows["Plain-X (theta 0.05)"]["widths"]}.', '']
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
