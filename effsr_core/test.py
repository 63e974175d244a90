"""Test with BasicSR's own pipeline and every plugin registered.

    python -m effsr_core.test -opt options/basicsr/<method>/test_<experiment>.yml
"""
from __future__ import annotations


def build_parser():
    """The command line (``--help``): BasicSR's own flags, each with a help line."""
    from effsr_core.basicsr.entry import build_parser

    return build_parser(is_train=False)


def main(argv: list[str] | None = None) -> None:
    from effsr_core.basicsr.entry import test

    test(argv)


if __name__ == '__main__':
    main()
