"""The toolboxes (BasicSR, MMagic, mmengine, mmcv) are imported only by the ``basicsr`` / ``mmagic`` adapter
subpackages, each of which imports its own toolbox only, and by the few modules named below that use BasicSR as a
plain library or patch the toolboxes. Read from the source (AST), so no toolbox needs to be installed."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ('effsr_core', 'ssl_plugin', 'memsr_plugin', 'multigrid_plugin')
#: adapter subpackage name -> the toolboxes its modules may import
ADAPTERS = {'basicsr': ('basicsr',), 'mmagic': ('mmagic', 'mmengine', 'mmcv')}
TOOLBOXES = tuple(toolbox for toolboxes in ADAPTERS.values() for toolbox in toolboxes)
#: module -> why it may import a toolbox outside an adapter subpackage
NAMED_EXCEPTIONS = {
    'effsr_core/compat/fixes/for_basicsr.py': 'environment fixes patch BasicSR as it is imported',
    'effsr_core/compat/fixes/for_mmengine.py': 'environment fixes patch mmengine as it is imported',
    'effsr_core/data/make_offline_data.py': "BasicSR as a library: MATLAB imresize, BD kernel, LMDB writer",
    'effsr_core/profiling/quality.py': "BasicSR as a library: calculate_psnr / calculate_ssim",
}


def _toolbox_imports(path: Path, toolboxes=TOOLBOXES) -> list[str]:
    """Absolute imports of ``toolboxes`` anywhere in the file (also inside functions), as 'name (line n)'."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [f'{name} (line {node.lineno})' for name in names if name.split('.')[0] in toolboxes]
    return found


def _adapter(module: str) -> str | None:
    """The adapter subpackage ``<package>/<adapter>/...`` a module lies in, if any."""
    parts = module.split('/')
    return parts[1] if len(parts) > 2 and parts[1] in ADAPTERS else None


MODULES = sorted(p.relative_to(ROOT).as_posix() for package in PACKAGES for p in (ROOT / package).rglob('*.py'))
ADAPTER_MODULES = [m for m in MODULES if _adapter(m)]
PLAIN_MODULES = [m for m in MODULES if not _adapter(m) and m not in NAMED_EXCEPTIONS]


@pytest.mark.parametrize('module', PLAIN_MODULES)
def test_a_module_outside_the_adapters_imports_no_toolbox(module):
    assert _toolbox_imports(ROOT / module) == [], f'{module} imports a toolbox outside basicsr/ or mmagic/'


@pytest.mark.parametrize('module', ADAPTER_MODULES)
def test_an_adapter_module_imports_no_other_toolbox(module):
    others = tuple(t for t in TOOLBOXES if t not in ADAPTERS[_adapter(module)])
    assert _toolbox_imports(ROOT / module, others) == [], f'{module} imports another toolbox than its own'


@pytest.mark.parametrize('module', sorted(NAMED_EXCEPTIONS))
def test_a_named_exception_still_needs_its_toolbox_import(module):
    assert (ROOT / module).is_file() and not _adapter(module), f'{module} is gone or in an adapter: drop its exception'
    assert _toolbox_imports(ROOT / module), f'{module} no longer imports a toolbox: drop its exception'


def test_the_check_covers_every_package_and_sees_the_adapters_imports():
    """Guards the parametrisation itself: a wrong root or pattern would collect no module and pass silently."""
    assert {m.split('/')[0] for m in PLAIN_MODULES} == set(PACKAGES)
    for adapter, toolboxes in ADAPTERS.items():
        importing = [m for m in ADAPTER_MODULES if _adapter(m) == adapter and _toolbox_imports(ROOT / m, toolboxes)]
        assert importing, f'the walker finds no {"/".join(toolboxes)} import in any {adapter}/ subpackage'
