"""``python -m effsr_core.compat install-hook|remove-hook|status``: manage the start-up hook of this environment.

The hook is a one-line ``effsr_core_compat.pth`` in site-packages that calls ``effsr_core.compat.install()`` at
interpreter start, so the fixes also reach programs that import MMagic before any plugin code runs
(``mim train mmagic ...``). It imports nothing heavy: each fix waits for the import it is bound to.
"""
from __future__ import annotations

import argparse
import os
import site
import sysconfig

PTH_NAME = 'effsr_core_compat.pth'
PTH_LINE = ("import importlib.util as _u; _u.find_spec('effsr_core') is not None "
            "and __import__('effsr_core.compat', fromlist=['install']).install()\n")


def hook_path() -> str:
    """Where the start-up hook lives: this interpreter's site-packages."""
    return os.path.join(sysconfig.get_paths()['purelib'], PTH_NAME)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of this command line."""
    parser = argparse.ArgumentParser(prog='python -m effsr_core.compat',
                                     description='Manage the start-up hook that applies the environment fixes.',
                                     epilog='example:\n  python -m effsr_core.compat install-hook',
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('action', choices=['install-hook', 'remove-hook', 'status'],
                        help=f'install-hook: write {PTH_NAME} to site-packages; remove-hook: delete it; '
                             f'status: show the hook and the fixes applied')
    return parser


def main(argv=None) -> None:
    """Run one action (see ``build_parser``)."""
    args = build_parser().parse_args(argv)
    path = hook_path()
    if args.action == 'install-hook':
        with open(path, 'w') as f:
            f.write(PTH_LINE)
        print(f'wrote {path}')
    elif args.action == 'remove-hook':
        if os.path.exists(path):
            os.remove(path)
        print(f'removed {path}')
    else:
        from effsr_core import compat
        print(f'hook file: {path} ({"present" if os.path.exists(path) else "absent"})')
        print(f'site-packages: {site.getsitepackages()}')
        print(f'fixes applied so far in this process: {compat.applied_fixes()}')


if __name__ == '__main__':
    main()
