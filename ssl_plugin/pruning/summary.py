"""What a pruning plan keeps, as JSON-ready plain data (no drawing, no toolbox): the units kept per group, per
branch and residual block, in the upsampler and in all, with the plan's settings and its latency record.

The groups and their kinds come from the architecture (``prunable_groups()`` / ``unit_kind()`` of a network of the
plan's ``arch``), never from names spelt here; a group name is only split into its branch, block and kind
(``<branch>.<block>.<kind>``, ``<branch>.hidden``) to arrange the figures like the SSL paper's Fig. 5.

Per branch, ``in`` / ``out`` fractions count the channels the compact network really has: those of the plan's
group that the branch's ``hidden`` state keeps (the same as the group's unless ``hidden`` is pruned, as ASSL does);
``groups`` gives every group's kept count as the plan states it.
"""
from __future__ import annotations

from typing import Any

from ssl_plugin.pruning.interface import PrunableNetwork
from ssl_plugin.pruning.plan import PruningPlan

BLOCK_KINDS = ('in', 'mid', 'out')
#: Display names of ``pruning.method``.
METHOD_NAMES = {'ssl': 'SSL', 'l1_norm': 'L1-norm', 'assl': 'ASSL'}


def _fraction(kept: int, size: int) -> float:
    return round(kept / size, 6)


def summarize_plan(plan: PruningPlan, network: PrunableNetwork) -> dict[str, Any]:
    """The summary of ``plan`` (see the module docstring).

    Args:
        plan: the plan of a compact network.
        network: a network of the plan's architecture, dense or compact (its groups and their kinds are read).

    Returns:
        ``method``, ``ratio`` (requested, or found for a latency target), ``selection``, ``round_to``,
        ``group_score``, ``units`` (the unit kinds the method prunes), ``arch``; ``groups``: ``{name: {kept, size}}``
        for every prunable group; ``branches``: ``{branch: {hidden, in, mid, out}}`` kept fractions (one per
        residual block for in / mid / out); ``upsampler``: kept fraction per upsampling layer; ``kept_units``,
        ``total_units`` and ``kept_fraction`` over the groups of the method's unit kinds; ``latency``: the plan's
        latency record (target, backend, dense and predicted ms, ...) or None.
    """
    sizes = network.prunable_groups()
    plan.check_against(plan.arch, sizes)
    kinds = {name: network.unit_kind(name) for name in sizes}
    extra = dict(plan.extra)
    units = list(extra.get('units') or dict.fromkeys(kinds.values()))
    kept = {name: plan.kept_indices(name, size) for name, size in sizes.items()}
    branches: dict[str, dict[str, Any]] = {}
    upsampler: dict[str, float] = {}
    for name, size in sizes.items():
        kind = kinds[name]
        if kind == 'upsampler':
            upsampler[name] = _fraction(len(kept[name]), size)
            continue
        branch = name.split('.', 1)[0]
        record = branches.setdefault(branch, {'hidden': 1.0, **{k: [] for k in BLOCK_KINDS}})
        if kind == 'hidden':
            record['hidden'] = _fraction(len(kept[name]), size)
            continue
        hidden = set(kept.get(f'{branch}.hidden', range(size)))
        count = len(kept[name]) if kind == 'mid' else sum(1 for c in kept[name] if c in hidden)
        record[kind].append(_fraction(count, size))
    counted = [name for name in sizes if kinds[name] in units]
    kept_units = sum(len(kept[name]) for name in counted)
    total_units = sum(sizes[name] for name in counted)
    return {
        'method': plan.method, 'ratio': plan.ratio, 'selection': extra.get('selection'),
        'round_to': extra.get('round_to'), 'group_score': extra.get('group_score'), 'units': units,
        'arch': dict(plan.arch),
        'groups': {name: {'kept': len(kept[name]), 'size': size} for name, size in sizes.items()},
        'branches': branches, 'upsampler': upsampler,
        'kept_units': kept_units, 'total_units': total_units,
        'kept_fraction': _fraction(kept_units, total_units) if total_units else 1.0,
        'latency': dict(extra['latency']) if extra.get('latency') else None,
    }


def describe_plan(summary: dict[str, Any]) -> str:
    """One line naming how the plan was made, e.g. ``SSL, min_global, ratio 0.5`` or, for a latency target,
    ``SSL, min_global, latency target 2x speed-up on ... (ratio found 0.43)``."""
    parts = [METHOD_NAMES.get(summary['method'], summary['method'])]
    if summary.get('selection'):
        parts.append(summary['selection'])
    latency = summary.get('latency')
    ratio = summary.get('ratio')
    if latency:
        found = f' (ratio found {ratio:.3g})' if ratio is not None else ''
        parts.append(f'latency target {latency.get("target", "?")}{found}')
    elif ratio is not None:
        parts.append(f'ratio {ratio:g}')
    if summary.get('round_to'):
        parts.append(f'rounded to {summary["round_to"]}')
    return ', '.join(parts)
