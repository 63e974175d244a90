"""Shared start of the BasicSR entry points: fixes, plugin registration, options check."""
from __future__ import annotations

import argparse
import os
import sys


def prepare_basicsr(argv: list[str] | None, is_train: bool) -> str:
    """Register every plugin into BasicSR and validate the ``-opt`` file; return the experiments root.

    BasicSR parses ``sys.argv`` itself, so ``argv`` (if given) replaces it. Experiments, results and
    tb_logger folders go under the current directory, as with BasicSR's own scripts run from a repo root.
    """
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    from effsr_core.frameworks.basicsr_plugins import register_all

    register_all()
    from basicsr.utils.options import ordered_yaml
    import yaml

    from effsr_core.options_check import check_basicsr_options

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('-opt', required=True)
    known, _ = parser.parse_known_args()
    if not os.path.isfile(known.opt):
        raise SystemExit(f'-opt: options file {known.opt!r} does not exist.')
    with open(known.opt) as f:
        opt = yaml.load(f, Loader=ordered_yaml()[0])
    check_basicsr_options(opt, is_train=is_train)
    return os.getcwd()
