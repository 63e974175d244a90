"""The toolboxes (BasicSR, MMagic, mmengine, mmcv) are imported only by the ``basicsr`` / ``mmagic`` adapter
subpackages, and by the few modules named below that use BasicSR as a plain library or patch the toolboxes."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ('effsr_core', 'ssl_plugin', 'memsr_plugin', 'multigrid_plugin')
TOOLBOXES = ('basicsr', 'mmagic', 'mmengine', 'mmcv')
ADAPTER_SUBPACKAGES = ('basicsr', 'mmagic')
#: module -> why it may import a toolbox outside an adapter subpackage
NAMED_EXCEPTIONS = {
    'effsr_core/compat/fixes/for_basicsr.py': 'environment fixes patch BasicSR as it is imported',
    'effsr_core/compat/fixes/for_mmengine.py': 'environment fixes patch mmengine as it is imported',
    'effsr_core/data/make_offline_data.py': "BasicSR as a library: MATLAB imresize, BD kernel, LMDB writer",
    'effsr_core/profiling/quality.py': "BasicSR as a library: calculate_psnr / calculate_ssim",
}


def _toolbox_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [f'{name} (line {node.lineno})' for name in names if name.split('.')[0] in TOOLBOXES]
    return found


def _modules():
    return sorted(p.relative_to(ROOT).as_posix() for package in PACKAGES for p in (ROOT / package).rglob('*.py'))


@pytest.mark.parametrize('module', _modules())
def test_only_adapter_subpackages_import_the_toolboxes(module):
    parts = module.split('/')
    if len(parts) > 2 and parts[1] in ADAPTER_SUBPACKAGES or module in NAMED_EXCEPTIONS:
        return
    assert _toolbox_imports(ROOT / module) == [], f'{module} imports a toolbox outside basicsr/ or mmagic/'


def test_the_check_sees_imports_and_the_exceptions_still_need_them():
    assert _toolbox_imports(ROOT / 'ssl_plugin/basicsr/model.py')  # the walker finds adapter imports
    for module in NAMED_EXCEPTIONS:
        assert _toolbox_imports(ROOT / module), f'{module} no longer imports a toolbox: drop its exception'
