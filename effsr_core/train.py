"""Train with BasicSR's own pipeline and every plugin registered.

    python -m effsr_core.train -opt options/basicsr/<method>/<experiment>.yml [--auto_resume] [--launcher pytorch]

Multi-process: ``torchrun --nproc_per_node=N -m effsr_core.train -opt X.yml --launcher pytorch``.
"""
from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    from effsr_core.basicsr.entry import train

    train(argv)


if __name__ == '__main__':
    main()
