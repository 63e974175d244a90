"""BasicSR entry points (train, test): fixes, plugin registration, then BasicSR's own pipelines, whose options
parsing checks the options file first (``check_before_parsing``, installed by ``register_all`` for any script)."""
from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys

from effsr_core.options import OptionError, did_you_mean


def _apply_force_yml(opt: dict, entries: list[str]) -> None:
    """Apply ``--force_yml a:b=value`` overrides the way BasicSR's ``parse_options`` does, before checking; unlike
    BasicSR, a key that is not in the file is refused (BasicSR would add it, and nothing would read it)."""
    from basicsr.utils.options import _postprocess_yml_value

    for entry in entries:
        keys, separator, value = entry.partition('=')
        if not separator or not keys.strip():
            raise OptionError(f'--force_yml: {entry!r} is not KEY:SUBKEY=VALUE (e.g. train:ema_decay=0.999).')
        path = [key.strip() for key in keys.split(':')]
        target = opt
        for depth, key in enumerate(path):
            if not isinstance(target, dict) or key not in target:
                where = ':'.join(path[:depth]) or 'the top level'
                allowed = list(target) if isinstance(target, dict) else []
                raise OptionError(f'--force_yml: {":".join(path[:depth + 1])} is not in the options file ({where} '
                                  f'has {", ".join(map(str, allowed)) or "no keys"}).{did_you_mean([key], allowed)}')
            if depth < len(path) - 1:
                target = target[key]
        target[path[-1]] = _postprocess_yml_value(value.strip())


def build_parser(is_train: bool) -> argparse.ArgumentParser:
    """The command line BasicSR's ``parse_options`` reads, with a help line per option."""
    command = 'train' if is_train else 'test'
    example = (f'python -m effsr_core.{command} -opt options/basicsr/ssl/demo_SSL_BasicVSR_tiny_offline.yml'
               if is_train else
               'python -m effsr_core.test -opt options/basicsr/ssl/test/test_BasicVSR-bi_REDS4.yml')
    parser = argparse.ArgumentParser(
        prog=f'python -m effsr_core.{command}', formatter_class=argparse.RawDescriptionHelpFormatter,
        description=f'{"Train" if is_train else "Test"} with BasicSR\'s own pipeline, every plugin registered and '
                    'the options checked first.',
        epilog=f'example:\n  {example}\n  {example} --force_yml train:total_iter=1000 logger:print_freq=10'
               + ('\n  torchrun --nproc_per_node=2 -m effsr_core.train -opt X.yml --launcher pytorch' if is_train
                  else '') + '\n')
    parser.add_argument('-opt', required=True, metavar='YML', help='the experiment\'s BasicSR options file')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='job launcher for distributed runs (default: none, one process)')
    parser.add_argument('--auto_resume', action='store_true',
                        help='resume from the newest training state of this experiment, if any')
    parser.add_argument('--debug', action='store_true', help='BasicSR debug mode (name prefixed with debug_)')
    parser.add_argument('--local_rank', type=int, default=0, help='set by torch.distributed.launch; do not pass')
    parser.add_argument('--force_yml', nargs='+', default=[], metavar='KEY:SUBKEY=VALUE',
                        help='override keys that exist in the options file, e.g. train:ema_decay=0.999')
    return parser


def check_options_file(argv: list[str], is_train: bool) -> None:
    """Check the options file that BasicSR's flags ``argv`` name, with their ``--force_yml`` overrides applied; a
    mistake ends the process with one line naming the option, before BasicSR creates or renames any folder."""
    known = build_parser(is_train).parse_args(argv)
    import yaml
    from basicsr.utils.options import ordered_yaml

    from effsr_core.basicsr.options_check import check_basicsr_options

    if not os.path.isfile(known.opt):
        raise SystemExit(f'error: -opt: options file {known.opt!r} does not exist.')
    try:
        with open(known.opt) as f:
            opt = yaml.load(f, Loader=ordered_yaml()[0])
    except yaml.YAMLError as error:
        raise SystemExit(f'error: -opt: {known.opt} is not valid YAML: {" ".join(str(error).split())}') from None
    if not isinstance(opt, dict):
        raise SystemExit(f'error: -opt: {known.opt} does not hold a mapping of options.')
    try:
        _apply_force_yml(opt, known.force_yml)
        check_basicsr_options(opt, is_train=is_train)
    except OptionError as error:
        raise SystemExit(f'error in {known.opt}: {error}') from None


def check_before_parsing(module) -> bool:
    """Make ``module.parse_options`` (BasicSR's, as ``basicsr.train`` / ``basicsr.test`` hold it) check the options
    file first: every script that runs BasicSR's pipelines after ``import effsr_core.basicsr`` (ours, a lab's own
    ``train.py``) gets the same checks. Idempotent; returns whether it changed ``module``."""
    parse_options = module.parse_options
    if getattr(parse_options, '__effsr_checked__', False):
        return False

    @functools.wraps(parse_options)
    def checked_parse_options(root_path, is_train=True):
        check_options_file(sys.argv[1:], is_train)
        return parse_options(root_path, is_train)

    checked_parse_options.__effsr_checked__ = True
    module.parse_options = checked_parse_options
    return True


def prepare_basicsr(argv: list[str] | None, is_train: bool) -> str:
    """Register every plugin into BasicSR (its pipelines then check the ``-opt`` file first); return the
    experiments root.

    BasicSR parses ``sys.argv`` itself, so ``argv`` (if given) replaces it. Experiments, results and
    tb_logger folders go under the current directory, as with BasicSR's own scripts run from a repo root.
    """
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    build_parser(is_train).parse_args(sys.argv[1:])  # --help and malformed flags, before BasicSR is imported
    from effsr_core.basicsr import register_all

    register_all()
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
