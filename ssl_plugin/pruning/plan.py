"""A pruning plan: which units of which prunable group are kept, for one architecture configuration.

It is plain data (JSON-compatible, no pickled modules), saved in every checkpoint, and enough to rebuild the
compact network for training, resume, test and inference.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

FORMAT_VERSION = 1


class PlanError(ValueError):
    """A plan that is malformed or does not match the architecture it is applied to."""


@dataclass(frozen=True)
class PruningPlan:
    """Kept indices per pruned group; a group that is absent keeps all its units.

    Args:
        arch: the architecture configuration the plan was made for (e.g. ``num_feat``, ``num_block``).
        kept: sorted kept unit indices per pruned group.
        method: how the plan was made (``ssl``, ``l1_norm``, ``assl``...), for the record.
        ratio: the requested pruning ratio, for the record.
    """
    arch: Mapping[str, Any]
    kept: Mapping[str, tuple[int, ...]]
    method: str = 'ssl'
    ratio: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, 'arch', dict(self.arch))
        object.__setattr__(self, 'kept', {name: tuple(int(i) for i in idx) for name, idx in self.kept.items()})
        for name, indices in self.kept.items():
            if not indices:
                raise PlanError(f'pruning plan: group {name!r} keeps no unit; every group keeps at least one.')
            if list(indices) != sorted(set(indices)):
                raise PlanError(f'pruning plan: kept indices of {name!r} must be sorted and unique.')

    def kept_indices(self, name: str, size: int) -> list[int]:
        """Kept indices of group ``name`` of ``size`` units (all of them when the group is not pruned)."""
        return list(self.kept.get(name, range(size)))

    def pruned_indices(self, name: str, size: int) -> list[int]:
        kept = set(self.kept_indices(name, size))
        return [i for i in range(size) if i not in kept]

    def check_against(self, arch: Mapping[str, Any], group_sizes: Mapping[str, int]) -> None:
        """Raise ``PlanError`` unless the plan fits an architecture with this config and these groups."""
        for key, value in self.arch.items():
            if key in arch and arch[key] != value:
                raise PlanError(f'pruning plan was made for {key}={value!r} but the network has {key}={arch[key]!r}.')
        for name, indices in self.kept.items():
            if name not in group_sizes:
                raise PlanError(f'pruning plan names group {name!r}, which the network does not have '
                                f'(it has e.g. {", ".join(list(group_sizes)[:4])}, ...).')
            if indices[-1] >= group_sizes[name]:
                raise PlanError(f'pruning plan keeps unit {indices[-1]} of group {name!r}, '
                                f'which has only {group_sizes[name]} units.')

    def kept_fraction(self, group_sizes: Mapping[str, int]) -> float:
        """Fraction of units kept over the given groups."""
        total = sum(group_sizes.values())
        kept = sum(len(self.kept_indices(name, size)) for name, size in group_sizes.items())
        return kept / total

    def to_dict(self) -> dict:
        return {'format': FORMAT_VERSION, 'method': self.method, 'ratio': self.ratio, 'arch': dict(self.arch),
                'kept': {name: list(indices) for name, indices in self.kept.items()}, 'extra': dict(self.extra)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> 'PruningPlan':
        if not isinstance(data, Mapping) or data.get('format') != FORMAT_VERSION:
            raise PlanError(f'not a pruning plan of format {FORMAT_VERSION}: {str(data)[:120]}')
        return cls(arch=data['arch'], kept=data['kept'], method=data.get('method', 'ssl'), ratio=data.get('ratio'),
                   extra=data.get('extra') or {})

    @classmethod
    def coerce(cls, plan: 'PruningPlan | Mapping[str, Any]') -> 'PruningPlan':
        return plan if isinstance(plan, cls) else cls.from_dict(plan)


def encode_state(state: Mapping[str, Any]) -> torch.Tensor:
    """JSON-encode plain data as a uint8 tensor, so it survives every checkpoint writer (BasicSR calls ``.cpu()`` on
    each state-dict entry) and ``torch.load(weights_only=True)``."""
    return torch.tensor(list(json.dumps(state, sort_keys=True).encode()), dtype=torch.uint8)


def decode_state(tensor: torch.Tensor) -> dict:
    return json.loads(bytes(tensor.cpu().tolist()).decode())
