"""SSL efficiency per runtime backend: full-size BasicVSR vs SSL-pruned networks at LR 180x320, one run, interleaved.

Networks (``ssl_efficiency.build_networks``, seeded random weights): the dense BasicVSR, SSL ``min_global`` plans at
ratios 0.3 / 0.5 / 0.7 with kept counts unrounded or rounded to 8 / 16, and BasicVSR-lite 32 / 40 (dense networks of
about the MACs of SSL 0.7 and SSL 0.5). Backends (``effsr_core.profiling.backends``): PyTorch eager in NCHW and in
channels-last, TorchScript (frozen), ONNX Runtime and OpenVINO (through the verified ONNX export; the recurrent
network is exported through its scriptable form, so SpyNet and the frame loops are inside the file). Each compiled
network is checked against eager on the benchmark input first (max |difference| / max |output| <= 1e-4).

Unlike ``ssl_efficiency.py``, the whole network runs (SpyNet included: ONNX files hold it), so speed-ups are
compared with the MAC reduction including SpyNet's MACs; the paper's reduction without SpyNet is listed too.
One backend at a time (every compiled form at once needs more memory than this machine's 23 GB: ONNX Runtime and
OpenVINO keep about a gigabyte of buffers per full-size network), the networks are timed in ``--rounds`` interleaved
rounds (round r runs each once) and the median is reported: speed-ups within a backend come from interleaved runs,
comparisons across backends from phases minutes apart (their times and load averages are in the JSON).
Targets (issue 8) at ratio 0.5, under each network's best backend (best-vs-best): speed-up >= 0.85 x MAC reduction,
and the compact network's ms per GMAC <= 1.05 x that of the dense network of equal MACs (BasicVSR-lite 40).
Where the time goes: per-op-type time of the dense, SSL 0.5 and lite networks under the best backend
(torch.profiler, ONNX Runtime's profiler or OpenVINO's performance counters).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/ssl_backends.py   # writes benchmarks/results/ssl_backends_cpu.*
    python benchmarks/ssl_backends.py --device cuda --frames 10 --rounds 10 --out benchmarks/results/ssl_backends_cuda

On a GPU the backends that run there are timed (eager, channels-last, TorchScript; CUDA events).
"""
from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from effsr_core.profiling.backends import (BACKENDS, TOLERANCE, check_backend, compile_network, onnx_file,
                                           relative_difference)
from effsr_core.profiling.counting import count_ops
from effsr_core.profiling.memory import release_free_heap_pages
from effsr_core.profiling.report import machine_info
from effsr_core.profiling.timing import interleaved_runtimes
from ssl_efficiency import DENSE, add_network_arguments, build_networks
from training_runs import write_report_files

RESULTS = Path(__file__).parent / 'results'
EAGER_CHANNELS_LAST = 'eager channels-last'
TARGET_RATIO, TARGET_SPEEDUP_SHARE, TARGET_PER_GMAC = 0.5, 0.85, 1.05
EQUAL_MACS = {'SSL 0.5': 'BasicVSR-lite 40', 'SSL 0.7': 'BasicVSR-lite 32'}


def backend_names(available: list[str]) -> list[str]:
    """'eager', 'eager channels-last', then the other backends that run here."""
    return ['eager', EAGER_CHANNELS_LAST, *(name for name in available if name != 'eager')]


def compiled_form(net: nn.Module, lqs: torch.Tensor, expected: torch.Tensor, backend: str) -> tuple:
    """(forward, description, max relative difference from eager's ``expected`` output) of ``net`` under
    ``backend``; stops the run when the difference exceeds the profiler's tolerance."""
    if backend == EAGER_CHANNELS_LAST:
        twin = type(net)(**net.config, plan=net.plan).eval()
        twin.load_state_dict(net.state_dict())
        forward, description = twin.to(lqs.device, memory_format=torch.channels_last), 'PyTorch eager, channels-last'
    else:
        compiled = compile_network(net, lqs, backend)
        forward, description = compiled, compiled.description
    with torch.no_grad():
        difference = relative_difference(forward(lqs), expected)
    if lqs.device.type == 'cpu' and not difference <= TOLERANCE:  # on the GPU, TF32 convs differ by more
        raise SystemExit(f'{type(net).__name__} under {backend} differs from eager by {difference:.2g}')
    return forward, description, difference


def op_profile(backend: str, net: nn.Module, lqs: torch.Tensor) -> dict[str, float]:
    """Milliseconds per op type in one forward under ``backend`` (its own profiler), largest first."""
    times: dict[str, float] = collections.defaultdict(float)
    if backend in ('eager', EAGER_CHANNELS_LAST):
        from torch.profiler import ProfilerActivity, profile
        module = net.to(memory_format=torch.channels_last) if backend == EAGER_CHANNELS_LAST else net
        cuda = lqs.device.type == 'cuda'
        with torch.no_grad():
            module(lqs)
            with profile(activities=[ProfilerActivity.CPU] + [ProfilerActivity.CUDA] * cuda) as prof:
                module(lqs)
        for event in prof.key_averages():  # on the GPU: the kernel time of each aten op (kernels are not listed apart)
            if not cuda:
                times[event.key] += event.self_cpu_time_total / 1000
            elif event.key.startswith('aten::'):
                times[event.key] += event.self_device_time_total / 1000
    elif backend == 'onnxruntime':
        import onnxruntime
        with tempfile.TemporaryDirectory() as folder:
            path = onnx_file(net, lqs, folder)
            options = onnxruntime.SessionOptions()
            options.enable_profiling, options.profile_file_prefix = True, f'{folder}/prof'
            options.intra_op_num_threads = torch.get_num_threads()
            options.log_severity_level = 4
            session = onnxruntime.InferenceSession(path, options, providers=['CPUExecutionProvider'])
            session.run(None, {session.get_inputs()[0].name: lqs.numpy()})
            trace = json.loads(Path(session.end_profiling()).read_text())
        for event in trace:
            if event.get('cat') == 'Node' and event['name'].endswith('_kernel_time'):
                times[event['args']['op_name']] += event['dur'] / 1000 / 2  # two runs: warm-up and profiled
    elif backend == 'openvino':
        import openvino
        with tempfile.TemporaryDirectory() as folder:
            path = onnx_file(net, lqs, folder)
            core = openvino.Core()
            compiled = core.compile_model(core.read_model(path), 'CPU', {
                'INFERENCE_PRECISION_HINT': 'f32', 'INFERENCE_NUM_THREADS': torch.get_num_threads(),
                'PERF_COUNT': True})
        request = compiled.create_infer_request()
        request.infer([lqs.numpy()])
        request.infer([lqs.numpy()])
        for info in request.profiling_info:
            times[info.node_type] += info.real_time.total_seconds() * 1000
    else:  # torchscript: no per-op timer outside the profiling executor
        return {}
    return dict(sorted(((name, ms) for name, ms in times.items() if ms > 0), key=lambda item: -item[1]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_network_arguments(parser)
    parser.add_argument('--backends', nargs='+', choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--quick', action='store_true', help='a small smoke run (not for the results)')
    parser.add_argument('--out', default=str(RESULTS / 'ssl_backends_cpu'))
    args = parser.parse_args(argv)
    args.group_scores = ['sum']
    if args.quick:
        args.lr_size, args.rounds, args.ratios, args.round_to, args.lite_feat = '32x48', 2, [0.5], [None, 16], [40]
    if args.threads:
        torch.set_num_threads(args.threads)
    unavailable = {name: problem for name in args.backends if (problem := check_backend(name, args.device))}
    backends = backend_names([name for name in args.backends if name not in unavailable])
    h, w = (int(v) for v in args.lr_size.split('x'))
    lqs = torch.rand(1, args.frames, 3, h, w, generator=torch.Generator().manual_seed(args.seed)).to(args.device)
    started = time.time()
    networks = {name: net.to(args.device) for name, net in build_networks(args).items() if 'min_local' not in name}
    rows, expected = {}, {}
    for name, net in networks.items():
        ops = count_ops(net, lqs, exclude=('spynet',))
        rows[name] = {'macs_per_frame': ops.counted.macs,
                      'macs_per_frame_with_spynet': ops.counted.macs + ops.excluded['spynet'].macs, 'backends': {}}
        with torch.no_grad():
            expected[name] = net(lqs)
    times, phases = {}, {}
    for backend in backends:  # one backend at a time: every compiled form at once does not fit in memory
        phase = {'start_seconds': time.time() - started, 'load_before': os.getloadavg()[0]}
        forwards = {}
        for name, net in networks.items():
            forwards[name], description, difference = compiled_form(net, lqs, expected[name], backend)
            rows[name]['backends'][backend] = {'description': description, 'max_relative_difference': difference}
        phase['compiled_seconds'] = time.time() - started
        for name, timing in interleaved_runtimes(forwards, lqs, args.rounds, args.frames).items():
            times[(name, backend)] = timing
        phases[backend] = {**phase, 'end_seconds': time.time() - started, 'load_after': os.getloadavg()[0]}
        del forwards
        gc.collect()
        release_free_heap_pages()
        print(f'[{time.time() - started:.0f}s] {backend}: {len(networks)} networks compiled and timed', flush=True)
    dense = rows[DENSE]
    best_dense = min(times[(DENSE, backend)]['median_ms'] for backend in backends)
    for name, row in rows.items():
        for backend in backends:
            timing = times[(name, backend)]
            row['backends'][backend].update(timing, ms_per_gmac=timing['median_ms'] / (
                row['macs_per_frame_with_spynet'] / 1e9), speedup=times[(DENSE, backend)]['median_ms'] / timing[
                'median_ms'])
        row['best_backend'] = min(backends, key=lambda backend: times[(name, backend)]['median_ms'])
        row['mac_reduction'] = dense['macs_per_frame'] / row['macs_per_frame']
        row['mac_reduction_with_spynet'] = dense['macs_per_frame_with_spynet'] / row['macs_per_frame_with_spynet']
        row['best_vs_best_speedup'] = best_dense / times[(name, row['best_backend'])]['median_ms']
    targets = {}
    for name, lite in EQUAL_MACS.items():
        if name not in rows or lite not in rows:
            continue
        row, lite_row = rows[name], rows[lite]
        best = row['backends'][row['best_backend']]
        targets[name] = {
            'speedup_share': row['best_vs_best_speedup'] / row['mac_reduction_with_spynet'],
            'per_gmac_vs_equal_macs': best['ms_per_gmac'] / lite_row['backends'][row['best_backend']]['ms_per_gmac'],
            'equal_macs_network': lite}
    print(f'[{time.time() - started:.0f}s] profiling ops', flush=True)
    profiled = [DENSE, 'SSL 0.5', 'BasicVSR-lite 40']
    profiles = {name: {'backend': rows[name]['best_backend'],
                       'ms_per_op': op_profile(rows[name]['best_backend'], networks[name], lqs)}
                for name in profiled if name in rows}
    report = {'machine': machine_info(), 'command': [sys.executable, *sys.argv], 'lr_size': [h, w],
              'frames': args.frames, 'rounds': args.rounds, 'seed': args.seed, 'device': args.device,
              'cudnn_allow_tf32': torch.backends.cudnn.allow_tf32 if args.device == 'cuda' else None,
              'backends': backends,
              'unavailable_backends': unavailable, 'wall_seconds': time.time() - started, 'phases': phases,
              'networks': rows,
              'targets': targets, 'op_profiles': profiles}
    write_report_files(Path(args.out), report, markdown)
    print(markdown(report))


def milliseconds(value: float) -> str:
    """Three significant digits below 100, whole numbers above."""
    return f'{value:.0f}' if value >= 100 else f'{value:.3g}'


def markdown(report: dict) -> str:
    m, backends = report['machine'], report['backends']
    first = next(iter(report['networks'].values()))['backends']
    device = f'GPU ({m["gpu"]})' if report.get('device') == 'cuda' else f'CPU ({m["cpu"]}, {m["threads"]} threads)'
    lines = [f'# SSL efficiency per backend, {device}, torch {m["torch"]}', '',
             f'Command: `{" ".join(report["command"])}`  ',
             f'LR {report["lr_size"][0]}x{report["lr_size"][1]}, {report["frames"]} frames per forward, whole network '
             f'(SpyNet included), ms per frame: median of {report["rounds"]} interleaved rounds, one backend at a time '
             f'(phases in the JSON); '
             f'{report["wall_seconds"] / 60:.0f} min wall. Plans from seeded random weights. "MAC red." includes '
             'SpyNet (the paper\'s figure without it in brackets); speed-ups are per backend, and best-vs-best '
             'compares each network under its fastest backend.'
             + (f' cuDNN TF32 {"on (PyTorch default)" if report["cudnn_allow_tf32"] else "off"}.'
                if report.get('device') == 'cuda' else ''),
             '', 'Backends: ' + '; '.join(f'{b}: {first[b]["description"]}' for b in backends) + '.',
             *(f'{name}, {b}: {row["backends"][b]["description"]}.' for name, row in report['networks'].items()
               for b in backends if row['backends'][b]['description'] != first[b]['description'])]
    if report['unavailable_backends']:
        lines.append('Not measured: ' + '; '.join(f'{b} ({why})' for b, why in report['unavailable_backends'].items()))
    lines += ['', '| network | GMACs/frame incl. SpyNet | MAC red. | ' + ' | '.join(f'ms {b}' for b in backends)
              + ' | best | best vs best (share of MAC red.) | max rel. diff. |',
              '|---|---|---|' + '---|' * len(backends) + '---|---|---|']
    for name, r in report['networks'].items():
        cells = ' | '.join(f'{milliseconds(r["backends"][b]["median_ms"])} ({r["backends"][b]["speedup"]:.2f}x)'
                           for b in backends)
        difference = max(r['backends'][b]['max_relative_difference'] for b in backends)
        lines.append(f'| {name} | {r["macs_per_frame_with_spynet"] / 1e9:.1f} | {r["mac_reduction_with_spynet"]:.2f}x '
                     f'({r["mac_reduction"]:.2f}x) | {cells} | {r["best_backend"]} | {r["best_vs_best_speedup"]:.2f}x '
                     f'({r["best_vs_best_speedup"] / r["mac_reduction_with_spynet"]:.2f}) | {difference:.1e} |')
    lines += ['', 'ms per GMAC (incl. SpyNet) per backend:', '',
              '| network | ' + ' | '.join(backends) + ' |', '|---|' + '---|' * len(backends)]
    for name, r in report['networks'].items():
        per_gmac = ' | '.join(milliseconds(r['backends'][b]['ms_per_gmac']) for b in backends)
        lines.append(f'| {name} | {per_gmac} |')
    lines += ['', f'Targets at ratio {TARGET_RATIO} (best backend of each network):', '']
    for name, target in report['targets'].items():
        share_ok = target['speedup_share'] >= TARGET_SPEEDUP_SHARE
        gmac_ok = target['per_gmac_vs_equal_macs'] <= TARGET_PER_GMAC
        lines.append(f'- {name}: speed-up / MAC reduction = {target["speedup_share"]:.2f} (target >= '
                     f'{TARGET_SPEEDUP_SHARE}: {"met" if share_ok else "missed"}); ms per GMAC vs '
                     f'{target["equal_macs_network"]} (equal MACs) = {target["per_gmac_vs_equal_macs"]:.2f}x (target '
                     f'<= {TARGET_PER_GMAC}: {"met" if gmac_ok else "missed"})')
    lines += ['', 'Where the time goes (one forward under the best backend, ms per op type, top 8):', '']
    for name, profile in report['op_profiles'].items():
        total = sum(profile['ms_per_op'].values())
        top = ', '.join(f'{op} {milliseconds(ms)} ({100 * ms / total:.0f}%)'
                        for op, ms in list(profile['ms_per_op'].items())[:8]) or 'no per-op timer for this backend'
        lines.append(f'- {name} ({profile["backend"]}, {milliseconds(total)} ms profiled): {top}')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
