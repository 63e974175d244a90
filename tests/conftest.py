"""Shared fixtures: the repository root, the offline data (generated once per session) and small views of it; and
the rule that keeps ``pytest -m "not slow"`` quick: a test that starts a Python interpreter must be marked slow."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
_ENVIRONMENT_BIN = Path(sys.executable).parent


def _python_program(args, executable=None, shell=False) -> str | None:
    """The program of a ``Popen`` call if it is a Python interpreter or a script of this environment (``mim``,
    ``torchrun``), else None."""
    if executable is not None:
        program = executable
    elif isinstance(args, (str, bytes, Path)):
        program = str(args).split()[0] if shell and str(args).split() else args
    else:
        program = args[0] if args else ''
    program = Path(program.decode() if isinstance(program, bytes) else program)
    return str(program) if program.name.startswith('python') or program.parent == _ENVIRONMENT_BIN else None


def _called_from_a_test_file() -> bool:
    """Whether the ``Popen`` being built was asked for by code under tests/ (not by a library, e.g. torch's compile
    workers): the first frame outside the subprocess module decides."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename == subprocess.__file__:
        frame = frame.f_back
    return frame is not None and Path(frame.f_code.co_filename).resolve().is_relative_to(TESTS)


@pytest.fixture(autouse=True)
def _interpreters_only_in_slow_tests(request, monkeypatch):
    """A fresh interpreter (``python -m ...``, ``mim train``, ``torchrun``, a lab's train.py) costs seconds in imports
    alone, so a test that starts one is marked ``slow``. Enforced rather than remembered: without the marker the
    test fails, naming the command. Session and module fixtures are set up before this guard and are not seen."""
    if request.node.get_closest_marker('slow'):
        return
    build = subprocess.Popen.__init__

    def guarded(self, args, *rest, **kwargs):
        program = _python_program(args, kwargs.get('executable'), kwargs.get('shell', False))
        if program and _called_from_a_test_file():
            pytest.fail(f'{request.node.nodeid} starts {program}: mark it @pytest.mark.slow (a test that starts a '
                        'Python interpreter is slow), so that pytest -m "not slow" stays quick', pytrace=False)
        build(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, '__init__', guarded)


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope='session')
def offline_data() -> Path:
    """The default offline datasets under <repo>/data/offline (reused when the manifest matches)."""
    from effsr_core.data.make_offline_data import ensure_offline_data

    root = REPO_ROOT / 'data' / 'offline'
    ensure_offline_data(root, seed=0)
    return root


@pytest.fixture(scope='session')
def tiny_video_val(offline_data, tmp_path_factory) -> dict:
    """Options for a quick validation set: the first 8 frames of clip 000 (links into the offline data), in the
    REDS layout that BasicSR's VideoRecurrentTestDataset (name REDS4) and MMagic's BasicFramesDataset read."""
    root = tmp_path_factory.mktemp('tiny_val')
    video = offline_data / 'video_sr'
    for kind, source in (('gt', video / 'train_sharp' / '000'), ('lq', video / 'train_sharp_bicubic' / 'X4' / '000')):
        (root / kind / '000').mkdir(parents=True)
        for frame in sorted(source.iterdir())[:8]:
            (root / kind / '000' / frame.name).symlink_to(frame)
    (root / 'meta_info.txt').write_text('000 8 (256,256,3)\n')
    return {'dataroot_gt': str(root / 'gt'), 'dataroot_lq': str(root / 'lq'),
            'meta_info_file': str(root / 'meta_info.txt')}
