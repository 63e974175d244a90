"""Train with BasicSR's own pipeline and every plugin registered.

    python -m effsr_core.train -opt options/basicsr/<method>/<experiment>.yml [--auto_resume] [--launcher pytorch]

Multi-process: ``torchrun --nproc_per_node=N -m effsr_core.train -opt X.yml --launcher pytorch``.
"""
from __future__ import annotations


def build_parser():
    """The command line (``--help``): BasicSR's own flags, each with a help line."""
    from effsr_core.basicsr.entry import build_parser

    return build_parser(is_train=True)


def main(argv: list[str] | None = None) -> None:
    from effsr_core.basicsr.entry import train

    train(argv)


if __name__ == '__main__':
    main()
