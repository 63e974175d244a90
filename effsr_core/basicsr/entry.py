"""BasicSR entry points (train, test): fixes, plugin registration, options check, then BasicSR's own pipelines."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys


def _apply_force_yml(opt: dict, entries: list[str]) -> None:
    """Apply ``--force_yml a:b=value`` overrides the way BasicSR's ``parse_options`` does, before checking."""
    from basicsr.utils.options import _postprocess_yml_value

    for entry in entries:
        keys, value = (part.strip() for part in entry.split('=', 1))
        *parents, last = keys.split(':')
        target = opt
        for key in parents:
            target = target[key]
        target[last] = _postprocess_yml_value(value)


def prepare_basicsr(argv: list[str] | None, is_train: bool) -> str:
    """Register every plugin into BasicSR and validate the ``-opt`` file; return the experiments root.

    BasicSR parses ``sys.argv`` itself, so ``argv`` (if given) replaces it. Experiments, results and
    tb_logger folders go under the current directory, as with BasicSR's own scripts run from a repo root.
    An invalid option exits with a one-line message naming it.
    """
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    from effsr_core.basicsr import register_all

    register_all()
    import yaml
    from basicsr.utils.options import ordered_yaml

    from effsr_core.basicsr.options_check import check_basicsr_options
    from effsr_core.options import OptionError

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('-opt', required=True)
    parser.add_argument('--force_yml', nargs='+', default=[])
    known, _ = parser.parse_known_args()
    if not os.path.isfile(known.opt):
        raise SystemExit(f'error: -opt: options file {known.opt!r} does not exist.')
    with open(known.opt) as f:
        opt = yaml.load(f, Loader=ordered_yaml()[0])
    try:
        _apply_force_yml(opt, known.force_yml)
        check_basicsr_options(opt, is_train=is_train)
    except (OptionError, KeyError) as error:
        raise SystemExit(f'error in {known.opt}: {error}') from None
    return os.getcwd()


@contextlib.contextmanager
def _checkpoint_errors_in_one_line():
    """An unsafe, unreadable or unfitting checkpoint ends the run with one line naming the file."""
    from effsr_core.checkpoints import CheckpointError

    try:
        yield
    except CheckpointError as error:
        raise SystemExit(f'error: {error}') from None


def train(argv: list[str] | None = None) -> None:
    """``python -m effsr_core.train``: check the options, then BasicSR's own ``train_pipeline``."""
    root_path = prepare_basicsr(argv, is_train=True)
    from basicsr.train import train_pipeline

    with _checkpoint_errors_in_one_line():
        train_pipeline(root_path)


def test(argv: list[str] | None = None) -> None:
    """``python -m effsr_core.test``: check the options, then BasicSR's own ``test_pipeline``."""
    root_path = prepare_basicsr(argv, is_train=False)
    from basicsr.test import test_pipeline

    with _checkpoint_errors_in_one_line():
        test_pipeline(root_path)
