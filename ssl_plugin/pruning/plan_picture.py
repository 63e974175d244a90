"""What a pruned network kept, drawn like the SSL paper's Fig. 5: the pruning ratio of each conv layer, one panel per
propagation branch (forward, backward: per residual block, its first conv's input channels ``in``, its mid filters
and its second conv's output filters ``out``; the hidden state as a dashed line) and one for the upsampling network
(``upconv1``, ``upconv2``, ``conv_hr``). Drawn from a ``summary.summarize_plan`` dict (also as read back from the
command's JSON), through ``effsr_core.plotting`` (matplotlib imported only here, when a picture is asked for)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from effsr_core.plotting import figure
from ssl_plugin.pruning.summary import describe_plan

#: Branches in the paper's panel order.
BRANCH_ORDER = ('forward', 'backward')
#: (legend label, marker) of a residual block's units.
BLOCK_SERIES = {'in': ('input channels (in, RSC)', 'o'), 'mid': ('mid filters (mid)', 's'),
                'out': ('output filters (out)', '^')}
UPSAMPLER_LABELS = {'upconv1': 'upconv1\n(PS groups)', 'upconv2': 'upconv2\n(PS groups)', 'conv_hr': 'conv_hr'}


def _block_ticks(count: int) -> list[int]:
    step = 1 if count <= 10 else 5
    return list(range(0, count, step))


def draw_plan(summary: Mapping[str, Any], png_path: str | Path, title: str | None = None) -> str:
    """Write the picture of ``summary`` to ``png_path`` (atomically); returns the path.

    Args:
        summary: a ``summarize_plan`` dict (``branches``, ``upsampler`` and the plan's settings are read).
        png_path: the PNG file to write.
        title: the figure's title (default: how the plan was made, ``describe_plan``).
    """
    branches = [branch for branch in BRANCH_ORDER if branch in summary['branches']]
    panels = len(branches) + 1
    with figure(png_path, 1, panels, figsize=(4.4 * panels, 3.6), dpi=120, squeeze=False) as (fig, axes):
        axes = list(axes[0])
        for ax, branch in zip(axes, branches):
            kept = summary['branches'][branch]
            blocks = list(range(len(kept['mid'])))
            for kind, (label, marker) in BLOCK_SERIES.items():
                ax.plot(blocks, [1 - f for f in kept[kind]], marker=marker, markersize=3.5, linewidth=1.0,
                        label=label)
            hidden = 1 - kept['hidden']
            label = f'hidden state ({hidden:.2f})' if hidden > 0 else 'hidden state (not pruned)'
            ax.axhline(hidden, color='0.4', linestyle='--', linewidth=1.0, label=label)
            ax.set_title(f'{branch} network')
            ax.set_xlabel('residual block')
            ax.set_xticks(_block_ticks(len(blocks)))
            ax.set_xlim(-0.5, len(blocks) - 0.5)
            ax.set_ylabel('pruning ratio')
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc='best')
        ax = axes[-1]
        names = list(summary['upsampler'])
        ratios = [1 - summary['upsampler'][name] for name in names]
        bars = ax.bar([UPSAMPLER_LABELS.get(name, name) for name in names], ratios, color='tab:purple', width=0.6)
        for bar, ratio in zip(bars, ratios):
            ax.annotate(f'{ratio:.2f}', (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha='center',
                        va='bottom', fontsize=8, xytext=(0, 2), textcoords='offset points')
        ax.set_title('upsampling network')
        ax.set_ylabel('pruning ratio')
        ax.set_ylim(0, 1.08)
        ax.grid(axis='y', alpha=0.3)
        fig.suptitle(title or f'{describe_plan(summary)}: kept {summary["kept_fraction"]:.1%} of the prunable units',
                     fontsize=10)
    return str(png_path)
