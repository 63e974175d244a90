"""Test with BasicSR's own pipeline and every plugin registered.

    python -m effsr_core.test -opt options/basicsr/<method>/test_<experiment>.yml
"""
from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    from effsr_core.basicsr.entry import test

    test(argv)


if __name__ == '__main__':
    main()
