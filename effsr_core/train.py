"""Train with BasicSR's own pipeline and every plugin registered.

    python -m effsr_core.train -opt options/basicsr/<method>/<experiment>.yml [--auto_resume] [--launcher pytorch]

Multi-process: ``torchrun --nproc_per_node=N -m effsr_core.train -opt X.yml --launcher pytorch``.
"""
from __future__ import annotations

from effsr_core.entry import prepare_basicsr


def main(argv: list[str] | None = None) -> None:
    root_path = prepare_basicsr(argv, is_train=True)
    from basicsr.train import train_pipeline

    train_pipeline(root_path)


if __name__ == '__main__':
    main()
