"""Fix for openmim 0.3.9: a training run its child process refused ends in the child's one-line message."""
from __future__ import annotations

import types

from effsr_core.compat.fixes.marks import _is_patched, _mark

#: The exit status of a run refused before its first iteration (``effsr_core.mmagic.refusals`` exits with it).
REFUSED_EXIT = 3


def mim_refused_run(module) -> bool:
    """``mim train`` runs MMagic's ``tools/train.py`` with ``subprocess.check_call`` and shows a traceback of its
    own (``CalledProcessError``) after the child's: for a child that exits with ``REFUSED_EXIT`` (it has printed
    its one line), mim exits with the same status instead. Every other failure keeps mim's traceback.

    mim does not import its commands: ``MIM.get_command`` (``mim.cli``) executes the command's file into a fresh
    namespace, so the fix gives the ``train`` command's namespace its own ``subprocess``."""
    get_command = module.MIM.get_command
    if _is_patched(get_command):
        return False

    @_mark
    def get_command_passing_refusals(self, ctx, name):
        command = get_command(self, ctx, name)
        namespace = getattr(getattr(command, 'callback', None), '__globals__', {})
        if getattr(command, 'name', None) == 'train' and 'subprocess' in namespace:
            namespace['subprocess'] = _passing_refusals(namespace['subprocess'])
        return command

    module.MIM.get_command = get_command_passing_refusals
    return True


def _passing_refusals(subprocess) -> types.SimpleNamespace:
    """``subprocess`` whose ``check_call`` turns a child's ``REFUSED_EXIT`` into the same exit, silently."""
    def check_call(*args, **kwargs):
        try:
            return subprocess.check_call(*args, **kwargs)
        except subprocess.CalledProcessError as error:
            if error.returncode == REFUSED_EXIT:
                raise SystemExit(REFUSED_EXIT) from None
            raise

    proxy = types.SimpleNamespace(**{name: getattr(subprocess, name) for name in dir(subprocess)
                                     if not name.startswith('__')})
    proxy.check_call = check_call
    return proxy
