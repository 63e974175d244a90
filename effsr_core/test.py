"""Test with BasicSR's own pipeline and every plugin registered.

    python -m effsr_core.test -opt options/basicsr/<method>/test_<experiment>.yml
"""
from __future__ import annotations

from effsr_core.entry import prepare_basicsr


def main(argv: list[str] | None = None) -> None:
    root_path = prepare_basicsr(argv, is_train=False)
    from basicsr.test import test_pipeline

    test_pipeline(root_path)


if __name__ == '__main__':
    main()
