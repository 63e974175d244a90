"""The rule in conftest.py that keeps ``pytest -m "not slow"`` quick: a test not marked slow cannot start a Python
interpreter (it fails before the child starts), while other programs and marked tests are left alone."""
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize('command', [[sys.executable, '-c', 'pass'],
                                     [str(Path(sys.executable).parent / 'torchrun'), '--help'],
                                     f'{sys.executable} -c pass'], ids=['python', 'environment-script', 'shell'])
def test_an_unmarked_test_cannot_start_an_interpreter(command):
    with pytest.raises(pytest.fail.Exception, match='mark it @pytest.mark.slow'):
        subprocess.run(command, shell=isinstance(command, str), capture_output=True)


def test_an_unmarked_test_may_run_another_program():
    assert subprocess.run(['true']).returncode == 0


@pytest.mark.slow
def test_a_slow_test_may_start_an_interpreter():
    assert subprocess.run([sys.executable, '-c', 'print(6 * 7)'], capture_output=True, text=True).stdout == '42\n'
