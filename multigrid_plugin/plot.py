"""A picture of a multigrid schedule: LR patch size, frames and learning rate per iteration (PNG)."""
from __future__ import annotations

from typing import Sequence

from effsr_core.checkpoints import atomic_write
from multigrid_plugin.schedule import MultigridSchedule


def save_schedule_plot(path: str, schedule: MultigridSchedule, lrs: Sequence[float], first_iter: int = 1) -> str:
    """Plot patch size, frames and ``lrs`` (one per schedule iteration) against the training iteration
    (``first_iter`` is the training iteration of the schedule's first) and write the PNG atomically."""
    import matplotlib

    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    iters = range(first_iter, first_iter + schedule.total_iter)
    shapes = [schedule(t) for t in range(1, schedule.total_iter + 1)]
    fig, axes = plt.subplots(3, 1, sharex=True, figsize=(6, 5), dpi=120)
    for ax, values, label in zip(axes, ([s[1] for s in shapes], [s[2] for s in shapes], lrs),
                                 ('LR patch size', 'frames', 'learning rate')):
        ax.step(iters, values, where='post') if label != 'learning rate' else ax.plot(iters, values)
        ax.set_ylabel(label)
        for stage in schedule.stages[1:]:
            ax.axvline(first_iter + stage.start, color='0.8', linewidth=0.8)
    axes[-1].set_xlabel('iteration')
    axes[0].set_title(f'Multigrid schedule: {schedule.num_stages} stages ({schedule.order}, {schedule.mode})')
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format='png')
    plt.close(fig)
    return path
