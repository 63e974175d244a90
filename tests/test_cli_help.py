"""Every entry point's ``--help``: each option of its parser with a help line, and an example command."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def load_parser(source: str) -> argparse.ArgumentParser:
    """``build_parser()`` of a module name or of a script path relative to the repository."""
    if source.endswith('.py'):
        spec = importlib.util.spec_from_file_location(Path(source).stem, REPO_ROOT / source)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(source)
    return module.build_parser()


@pytest.mark.slow
@pytest.mark.parametrize('source', ['effsr_core.train', 'effsr_core.test', 'effsr_core.profile', 'effsr_core.infer',
                                    'effsr_core.export', 'effsr_core.compat.__main__',
                                    'effsr_core.data.make_offline_data', 'effsr_core.data.meta_info',
                                    'scripts/make_ssl_options.py',
                                    'scripts/make_multigrid_options.py', 'scripts/make_memsr_options.py',
                                    'scripts/make_docs.py', 'memsr_plugin.init', 'memsr_plugin.convert',
                                    'ssl_plugin.show_plan'])
def test_help_lists_every_option_with_a_help_line_and_an_example(source):
    command = [source] if source.endswith('.py') else ['-m', source.removesuffix('.__main__')]
    parser = load_parser(source)
    result = subprocess.run([sys.executable, *command, '--help'], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    squeezed = ''.join(result.stdout.split())  # argparse wraps help at spaces and after hyphens
    for action in parser._actions:
        assert action.help and action.help != argparse.SUPPRESS and '\n' not in action.help, action
        assert ''.join(action.help.split()) in squeezed, action.help
        for option in action.option_strings:
            assert option in result.stdout
    assert f'example:\n  {parser.prog} ' in result.stdout
