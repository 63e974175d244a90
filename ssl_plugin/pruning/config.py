"""The settings of one pruning run: the ``pruning`` section, validated once into an immutable ``PruningConfig``.

``PruningConfig.from_options`` is the only way from user options to settings: the section is checked against its
declaration (``ssl_plugin.options.PRUNING``, the single source of every rule), the method's defaults are filled in,
and the same content always gives back the same object (see ``effsr_core.options``), so the entry point's check,
the model, the hook and the scheduler offset share one config. Everything downstream (selection, pruner,
lifecycle) takes the config and checks nothing again.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

from ssl_plugin.options import DEFAULT_RATIO, PRUNING
from ssl_plugin.pruning.regularization import GrowingRegularization

@dataclass(frozen=True)
class LatencyTarget:
    """``pruning.latency``: reach ``speedup`` over the dense network or ``ms`` per frame, as predicted by the
    cost table of ``backend`` at ``lr_size`` on a clip of ``frames``; kept widths tried at multiples of ``step``."""
    speedup: float | None = None
    ms: float | None = None
    backend: str = 'eager-channels_last'
    lr_size: tuple[int, int] = (180, 320)
    frames: int = 4
    step: int = 8
    table: str | None = None

    def __post_init__(self):
        object.__setattr__(self, 'lr_size', tuple(self.lr_size))

    def target_ms(self, dense_ms: float) -> float:
        """The latency per frame to reach, given the dense network's."""
        return self.ms if self.ms is not None else dense_ms / self.speedup

    def describe(self) -> str:
        target = f'{self.speedup:g}x speed-up' if self.speedup is not None else f'{self.ms:g} ms per frame'
        return f'{target} on {self.backend} at LR {self.lr_size[0]}x{self.lr_size[1]}'


#: What each ``pruning.method`` prunes and how, unless the options say otherwise.
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    'ssl': dict(units=('in', 'mid', 'out', 'upsampler'), selection='min_global', regularize=True),
    'l1_norm': dict(units=('in', 'mid', 'out', 'upsampler'), selection='min_local', regularize=False),
    'assl': dict(units=('hidden', 'mid', 'upsampler'), selection='min_local', regularize=True),
}


@dataclass(frozen=True)
class PruningConfig:
    """The ``pruning`` section of an experiment (BasicSR YAML or MMagic config), checked, defaults resolved.

    Built from code (``PruningConfig(ratio=0.3)``) it is checked the same way, with ``pruning.*`` in the messages.
    ``ratio`` is None with a ``latency`` target (the selection finds the ratio), 0.5 when neither is given.
    """
    method: str = 'ssl'
    ratio: float | None = None
    selection: str | None = None
    units: tuple[str, ...] | None = None
    round_to: int | None = None
    latency: LatencyTarget | None = None
    regularization: GrowingRegularization = field(default_factory=GrowingRegularization)
    freeze_flow: bool = True
    group_score: str = 'sum'
    seed: int = 0

    def __post_init__(self):
        given = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ('regularization', 'latency')}
        latency = None if self.latency is None else asdict(self.latency)
        values = PRUNING.check(given | {'regularization': asdict(self.regularization), 'latency': latency})
        defaults = METHOD_DEFAULTS[self.method]
        object.__setattr__(self, 'selection', values['selection'] or defaults['selection'])
        object.__setattr__(self, 'units', tuple(values['units'] or defaults['units']))
        ratio = values['ratio'] if values['ratio'] is not None or self.latency is not None else DEFAULT_RATIO
        object.__setattr__(self, 'ratio', ratio)

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None, prefix: str = 'pruning') -> 'PruningConfig':
        """The config of a ``pruning`` section as written by the user; ``prefix`` is its name in the toolbox
        (e.g. ``model.pruning``), for the error messages. The same content gives the same object."""
        values = PRUNING.check(options, prefix)
        known = _BUILT.get(id(values))
        if known is None:
            latency = None if values['latency'] is None else LatencyTarget(**values['latency'])
            config = cls(**(values | {'regularization': GrowingRegularization(**values['regularization']),
                                      'latency': latency}))
            known = _BUILT[id(values)] = (values, config)  # the values are held so that their id is not reused
        return known[1]

    @property
    def regularize(self) -> bool:
        return METHOD_DEFAULTS[self.method]['regularize']

    @property
    def prune_iter(self) -> int:
        """The 1-based iteration at whose start the network is pruned."""
        return (self.regularization.total_iters if self.regularize else 0) + 1

    def phase(self, current_iter: int, net=None) -> str:
        """'regularize' or 'finetune' at ``current_iter``; a network already compact is always fine-tuning."""
        if net is not None and net.plan is not None:
            return 'finetune'
        return 'regularize' if current_iter < self.prune_iter else 'finetune'


#: Configs made by ``from_options``, by the id of their (shared, read-only) checked values.
_BUILT: dict[int, tuple[Mapping[str, Any], PruningConfig]] = {}
