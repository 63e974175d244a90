"""The latency lookup table: milliseconds per recorded torch call, measured on this device and backend, cached.

Entries are keyed by ``OpCall.signature`` (the function and its argument layouts). A missing entry is measured when
it is first needed (``CostTable.ensure``), each on its own replayed arguments, after warm-up, as the median of
several timed calls (``effsr_core.profiling.timing.measure_runtime``). The table lives in one JSON file with its
key (``device_key.table_key``); opening a file whose key differs from the current one raises one line naming every
field that differs, so a table is never reused for another device, thread count, backend or library version.
Writes go through ``effsr_core.checkpoints.atomic_write``.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Iterable

import torch

from effsr_core.checkpoints import atomic_write
from effsr_core.cost_model.calls import OpCall, UnreplayableCall, replay_arguments
from effsr_core.cost_model.device_key import CostBackend, CostModelError, get_backend, key_difference, table_key
from effsr_core.profiling.timing import measure_runtime, time_forward_ms

FORMAT_VERSION = 1
#: Measures one call on a backend, in ms (tests inject a fake one; nothing else times).
Timer = Callable[[OpCall, CostBackend], float]


def time_call(call: OpCall, backend: CostBackend, budget_ms: float = 60.0, trials: int = 3) -> float:
    """Median latency in ms of ``call`` replayed alone on ``backend``'s device: two warm-up calls, then ``trials``
    trials of as many calls as fit ``budget_ms`` (3 to 100)."""
    if call.func is None:
        raise UnreplayableCall(f'{call.name} was read from a file and cannot be replayed')
    device = backend.torch_device
    args, kwargs = replay_arguments(call, device)
    anchor = torch.empty(0, device=device)  # measure_runtime's device and CUDA-event choice
    run = lambda _: call.func(*args, **kwargs)  # noqa: E731
    with torch.no_grad():
        for _ in range(2):
            run(anchor)
        estimate = max(time_forward_ms(run, anchor), 1e-3)
    repeats = int(min(100, max(3, budget_ms / trials / estimate)))
    return measure_runtime(run, anchor, trials=trials, repeats=repeats, warmup=0).median_ms


def default_table_path(backend: CostBackend) -> Path:
    """Where a table of this device key lives unless a path is given: one file per key (so another device,
    thread count or version never meets this one's entries) under ``$EFFSR_CACHE_DIR`` or ``~/.cache/effsr``."""
    key = table_key(backend)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    root = Path(os.environ.get('EFFSR_CACHE_DIR') or Path.home() / '.cache' / 'effsr')
    return root / 'cost_tables' / f'{backend.name}-{digest}.json'


class CostTable:
    """Latency per call for one key; measured lazily, saved atomically.

    Args:
        backend: The backend the entries are (or will be) measured on.
        path: The JSON cache file (None: in memory only).
        timer: How a missing entry is measured (default ``time_call``).
        key: The table's key (default: the current one, ``table_key(backend)``).
    """

    def __init__(self, backend: CostBackend, path: str | Path | None = None, timer: Timer | None = None,
                 key: dict | None = None):
        self.backend, self.path, self.timer = backend, None if path is None else Path(path), timer or time_call
        self.key = dict(key) if key is not None else table_key(backend)
        self.entries: dict[str, dict] = {}

    @classmethod
    def open(cls, backend: CostBackend | str, path: str | Path, timer: Timer | None = None,
             key: dict | None = None) -> 'CostTable':
        """The table cached at ``path`` (an empty one if there is none yet); refuses a file of another key."""
        backend = get_backend(backend) if isinstance(backend, str) else backend
        table = cls(backend, path, timer, key)
        if table.path.is_file():
            stored = json.loads(table.path.read_text())
            difference = key_difference(stored.get('key', {}), table.key)
            if difference:
                raise CostModelError(f'cost table {table.path} was measured for another key ({difference}); '
                                     f'measure a new table for this one (another path)')
            table.entries = dict(stored.get('entries', {}))
        return table

    def __contains__(self, call: OpCall) -> bool:
        return call.signature in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def latency_ms(self, call: OpCall) -> float:
        """The entry of ``call`` (measured now if missing; not saved until ``save`` or ``ensure``)."""
        if call.signature not in self.entries:
            self.entries[call.signature] = {'op': call.name, 'ms': float(self.timer(call, self.backend))}
        return self.entries[call.signature]['ms']

    def ensure(self, calls: Iterable[OpCall]) -> int:
        """Measure every call not in the table yet (each distinct one once), then save; returns how many were new."""
        new = 0
        for call in calls:
            if call.signature not in self.entries:
                self.latency_ms(call)
                new += 1
        if new and self.path is not None:
            self.save()
        return new

    def save(self) -> None:
        """Write the table to its path atomically (key, format version, entries)."""
        if self.path is None:
            raise CostModelError('this cost table has no path to save to; give CostTable(path=...)')
        self.path.parent.mkdir(parents=True, exist_ok=True)
        document = {'format': FORMAT_VERSION, 'key': self.key, 'entries': self.entries}
        with atomic_write(self.path, 'w', encoding='utf-8') as f:
            json.dump(document, f, indent=1, sort_keys=True)
