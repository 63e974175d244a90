"""Deployment backends at 1920x1080 output, CPU: runtime and peak memory under PyTorch eager, ONNX Runtime and
OpenVINO for the dense and SSL-pruned BasicVSR, RFDN, and the MemSR teacher (Teacher-M) vs its plain student.

Networks (seeded random weights; runtime and memory do not depend on them): BasicVSR 64x30 dense and pruned by SSL
at ratio 0.5 (``min_global``, kept counts rounded to 16), 2 frames of 270x480 per forward; RFDN x4 on 270x480;
Teacher-M (``EDSRPixelShuffle`` 64x16, x4) and Plain-M, its plain student of width 64 made by Alg. 1
(``winning_initialisation``, few samples: the widths are fixed, so only the weights depend on them).

Peak memory: one fresh process per (network, backend), so that no earlier work leaves freed memory to reuse; it
builds and compiles the network and measures the growth of its resident memory during the first forward (the
profiler's measure for compiled networks, ``effsr_core.profiling.memory``), for eager too, so the three backends
are compared by one method. Eager's live-tensor peak (the profiler's default CPU measure) is listed beside it.
Runtime: every (network, backend) pair in one process, ``--rounds`` interleaved rounds, median per output frame.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/deploy_backends.py   # writes benchmarks/results/deploy_backends_cpu.*
    python benchmarks/deploy_backends.py --device cuda --rounds 10 --out benchmarks/results/deploy_backends_cuda

On a GPU: eager and TorchScript (the backends that run there), memory = CUDA allocator peak of one forward
(``torch.cuda.max_memory_allocated``, weights and input included), measured in the timing process.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from effsr_core.archs.rfdn_arch import RFDN
from effsr_core.profiling.backends import check_against_eager, check_backend, compile_network
from effsr_core.profiling.memory import measure_peak_memory, measure_resident_growth
from effsr_core.profiling.report import machine_info
from effsr_core.profiling.timing import interleaved_runtimes
from ssl_backends import milliseconds
from training_runs import write_report_files

RESULTS = Path(__file__).parent / 'results'
OUTPUT = (1080, 1920)
SCALE = 4
VIDEO_FRAMES = 2
NETWORKS = ('BasicVSR (dense)', 'BasicVSR SSL 0.5 round16', 'RFDN', 'Teacher-M (EDSRPixelShuffle)',
            'Plain-M (MemSR student)')
BACKENDS = ('eager', 'torchscript', 'onnxruntime', 'openvino')
#: CPU runs compare eager with the ONNX runtimes (TorchScript is timed by ssl_backends.py).
CPU_BACKENDS = ('eager', 'onnxruntime', 'openvino')


def build(name: str, seed: int = 0) -> nn.Module:
    """One of ``NETWORKS`` with seeded random weights, in eval mode."""
    torch.manual_seed(seed)
    if name.startswith('BasicVSR'):
        from ssl_plugin.archs import SSLBasicVSR
        from ssl_plugin.pruning.plan import PruningPlan
        from ssl_plugin.pruning.config import PruningConfig
        from ssl_plugin.pruning.pruner import StructuredPruner
        trained = SSLBasicVSR(num_feat=64, num_block=30).eval()
        plan = (PruningPlan(arch=trained.config, kept={}) if 'dense' in name
                else StructuredPruner(PruningConfig(ratio=0.5, round_to=16)).select(trained))
        return trained.pruned(plan).eval()
    if name == 'RFDN':
        return RFDN(upscale=SCALE).eval()
    from memsr_plugin.archs import EDSRPixelShuffle
    teacher = EDSRPixelShuffle(upscale=SCALE, num_feat=64, num_block=16).eval()
    if name.startswith('Teacher-M'):
        return teacher
    from memsr_plugin.conversion import convert
    from memsr_plugin.winning_init import InitSettings, winning_initialisation
    plain = convert(teacher, dtype=torch.float64, relu_body=True)
    settings = InitSettings.check(widths=[64], samples=2, patch=24, seed=seed)
    return winning_initialisation(plain, settings).student.float().eval()


def example_input(name: str, output: tuple[int, int]) -> torch.Tensor:
    h, w = output[0] // SCALE, output[1] // SCALE
    shape = (1, VIDEO_FRAMES, 3, h, w) if name.startswith('BasicVSR') else (1, 3, h, w)
    return torch.rand(shape, generator=torch.Generator().manual_seed(0))


def memory_child(name: str, backend: str, output: tuple[int, int]) -> dict:
    """In a fresh process: compile, then the resident-memory growth of the first forward (and eager's live peak)."""
    net, inputs = build(name), example_input(name, output)
    compiled = compile_network(net, inputs, backend)
    resident = measure_resident_growth(compiled, inputs)
    result = {'resident_growth_bytes': resident.peak_bytes if resident else None}
    if backend == 'eager':
        result['live_tensor_peak_bytes'] = measure_peak_memory(net, inputs).peak_bytes
    return result


def measure_memory(name: str, backend: str, output: tuple[int, int]) -> dict:
    command = [sys.executable, __file__, '--child', name, backend, '--output', f'{output[0]}x{output[1]}']
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f'memory of {name} under {backend} failed:\n{done.stderr[-2000:]}')
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--output', default=f'{OUTPUT[0]}x{OUTPUT[1]}', help='HR output size (default 1080x1920)')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--child', nargs=2, metavar=('NETWORK', 'BACKEND'), help=argparse.SUPPRESS)
    parser.add_argument('--quick', action='store_true', help='a 216x384 output smoke run (not for the results)')
    parser.add_argument('--out', default=str(RESULTS / 'deploy_backends_cpu'))
    args = parser.parse_args(argv)
    output = (216, 384) if args.quick else tuple(int(v) for v in args.output.split('x'))
    if args.child:
        print(json.dumps(memory_child(*args.child, output)))
        return
    started, load_before = time.time(), os.getloadavg()
    cuda = args.device == 'cuda'
    backends = [backend for backend in (BACKENDS if cuda else CPU_BACKENDS)
                if check_backend(backend, args.device) is None]
    rows: dict[str, dict] = {name: {backend: {} for backend in backends} for name in NETWORKS}
    for name in NETWORKS if not cuda else ():
        rows[name] = {backend: measure_memory(name, backend, output) for backend in backends}
        print(f'[{time.time() - started:.0f}s] {name}: memory ' + ', '.join(
            f'{backend} {row["resident_growth_bytes"] / 2 ** 20:.0f} MiB' for backend, row in rows[name].items()),
            flush=True)
    forwards, inputs_of = {}, {}
    for name in NETWORKS:
        net, inputs = build(name).to(args.device), example_input(name, output).to(args.device)
        inputs_of[name] = inputs
        for backend in backends:
            compiled = compile_network(net, inputs, backend)
            if cuda:
                rows[name][backend]['cuda_peak_bytes'] = measure_peak_memory(
                    net, inputs, None if backend == 'eager' else compiled).peak_bytes
            rows[name][backend]['max_relative_difference'] = (check_against_eager(net, compiled, inputs)
                                                              if backend != 'eager' else 0.0)
            rows[name][backend]['description'] = compiled.description
            forwards[(name, backend)] = compiled
        print(f'[{time.time() - started:.0f}s] {name}: compiled', flush=True)
    for name in NETWORKS:  # interleaved among the backends of one network (their inputs differ across networks)
        frames = inputs_of[name].shape[1] if inputs_of[name].dim() == 5 else 1
        timed = interleaved_runtimes({backend: forwards[(name, backend)] for backend in backends}, inputs_of[name],
                                     args.rounds, frames)
        for backend in backends:
            rows[name][backend].update(timed[backend])
        print(f'[{time.time() - started:.0f}s] {name}: timed', flush=True)
    report = {'machine': machine_info(), 'command': [sys.executable, *sys.argv], 'output_size': list(output),
              'rounds': args.rounds, 'device': args.device, 'backends': backends,
              'cudnn_allow_tf32': torch.backends.cudnn.allow_tf32 if cuda else None,
              'wall_seconds': time.time() - started,
              'load_average': {'before': load_before, 'after': os.getloadavg()}, 'networks': rows}
    write_report_files(Path(args.out), report, markdown)
    print(markdown(report))


def markdown(report: dict) -> str:
    m, backends = report['machine'], report['backends']
    h, w = report['output_size']
    first = next(iter(report['networks'].values()))
    cuda = report['device'] == 'cuda'
    device = f'GPU ({m["gpu"]})' if cuda else f'CPU ({m["cpu"]}, {m["threads"]} threads)'
    memory_method = (f'CUDA allocator peak of one forward (weights and input included); cuDNN TF32 '
                     f'{"on (PyTorch default)" if report["cudnn_allow_tf32"] else "off"}' if cuda else
                     'growth of the resident memory during the first forward, in a fresh process per (network, '
                     'backend); eager\'s live-tensor peak (weights and input included) in brackets')
    lines = [f'# Deployment backends at {w}x{h} output, {device}, torch {m["torch"]}',
             '', f'Command: `{" ".join(report["command"])}`  ',
             f'Runtime: ms per output frame, median of {report["rounds"]} rounds interleaved among the backends of '
             f'each network. Memory: {memory_method}. Seeded random weights. {report["wall_seconds"] / 60:.0f} min '
             'wall; load average before/after '
             f'{report["load_average"]["before"][0]:.1f}/{report["load_average"]["after"][0]:.1f}.', '',
             'Backends: ' + '; '.join(f'{b}: {first[b]["description"]}' for b in backends) + '.',
             *(f'{name}, {b}: {row[b]["description"]}.' for name, row in report['networks'].items() for b in backends
               if row[b]['description'] != first[b]['description']), '',
             '| network | ' + ' | '.join(f'ms {b}' for b in backends) + ' | '
             + ' | '.join(f'MiB {b}' for b in backends) + ' | max rel. diff. |',
             '|---|' + '---|' * (2 * len(backends) + 1)]
    for name, row in report['networks'].items():
        eager_ms = row['eager']['median_ms']
        times = ' | '.join(milliseconds(row[b]['median_ms'])
                           + ('' if b == 'eager' else f' ({eager_ms / row[b]["median_ms"]:.2f}x)') for b in backends)
        memory = ' | '.join(f'{row[b]["cuda_peak_bytes"] / 2 ** 20:.0f}' if cuda else (
            f'{row[b]["resident_growth_bytes"] / 2 ** 20:.0f}'
            + (f' ({row[b]["live_tensor_peak_bytes"] / 2 ** 20:.0f})' if b == 'eager' else '')) for b in backends)
        difference = max(row[b]['max_relative_difference'] for b in backends)
        lines.append(f'| {name} | {times} | {memory} | {difference:.1e} |')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
