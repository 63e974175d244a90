"""Mean scaling factor of the pruned vs kept units during regularisation (the paper's Fig. 6), as CSV and PNG."""
from __future__ import annotations

import csv
import io
import os

from effsr_core.checkpoints import atomic_write
from effsr_core.distributed import is_main_process
from effsr_core.plotting import figure


class FactorCurve:
    """Appends ``iter, alpha, gamma_pruned, gamma_kept`` rows to a CSV (main process only) and plots them.

    A resumed run appends to the same file; when an iteration appears twice the later row wins. Both files are
    replaced atomically, so a run killed while writing leaves the previous version.
    """

    FIELDS = ('iter', 'alpha', 'gamma_pruned', 'gamma_kept')

    def __init__(self, csv_path: str):
        self.csv_path = csv_path

    def record(self, iteration: int, alpha: float, gamma_pruned: float, gamma_kept: float) -> None:
        if not is_main_process():
            return
        os.makedirs(os.path.dirname(self.csv_path) or '.', exist_ok=True)
        text = io.StringIO(newline='')
        writer = csv.writer(text)
        if os.path.exists(self.csv_path):
            with open(self.csv_path, newline='') as f:
                text.write(f.read())
        else:
            writer.writerow(self.FIELDS)
        writer.writerow([iteration, f'{alpha:.6g}', f'{gamma_pruned:.6g}', f'{gamma_kept:.6g}'])
        with atomic_write(self.csv_path, 'w', newline='') as f:
            f.write(text.getvalue())

    def rows(self) -> list[dict[str, float]]:
        if not os.path.exists(self.csv_path):
            return []
        with open(self.csv_path, newline='') as f:
            by_iter = {int(row['iter']): {k: float(v) for k, v in row.items()} for row in csv.DictReader(f)}
        return [by_iter[i] for i in sorted(by_iter)]

    def save_plot(self, png_path: str | None = None) -> str | None:
        """Plot the recorded curve next to the CSV (or at ``png_path``); returns the path, or None if empty."""
        rows = self.rows()
        if not rows or not is_main_process():
            return None
        png_path = png_path or os.path.splitext(self.csv_path)[0] + '.png'
        iters = [r['iter'] for r in rows]
        with figure(png_path, figsize=(5, 3.4), dpi=120) as (fig, ax):
            ax.plot(iters, [r['gamma_kept'] for r in rows], label='kept')
            ax.plot(iters, [r['gamma_pruned'] for r in rows], label='pruned')
            ax.set_xlabel('iteration')
            ax.set_ylabel('mean |scaling factor|')
            ax.set_title('Sparsity-inducing regularisation')
            ax.legend()
        return png_path
