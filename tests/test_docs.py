"""The docs stay true to the tree: generated parts match the code, the layout page names every package and module
and nothing that is gone, and every relative link (and its heading anchor) resolves."""
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ('effsr_core', 'ssl_plugin', 'memsr_plugin', 'multigrid_plugin')
ARCHITECTURE = ROOT / 'docs' / 'architecture.md'
PAGES = [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]
LINK = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')


def _load_generator():
    spec = importlib.util.spec_from_file_location('make_docs', ROOT / 'scripts' / 'make_docs.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _load_generator()


@pytest.mark.parametrize('part', GENERATOR.PARTS, ids=lambda part: part.name)
def test_generated_part_matches_the_code(part):
    current = part.path.read_text()
    assert current == part.updated(current), f'{part.path.relative_to(ROOT)} ({part.name}) is stale: ' \
                                             'run python scripts/make_docs.py'


def _layout_paths() -> list[str]:
    """The paths in the first column of the tables of the '## Layout' section of docs/architecture.md."""
    section = ARCHITECTURE.read_text().split('\n## Layout\n', 1)
    assert len(section) == 2, 'docs/architecture.md has no "## Layout" section'
    body = section[1].split('\n## ', 1)[0]
    return re.findall(r'^\| `([^`]+)` \|', body, flags=re.MULTILINE)


def _tree() -> set[str]:
    """Every package folder (as 'a/b/') and every module but __init__.py of the four packages."""
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob('*.py'):
            if '__pycache__' in path.parts:
                continue
            relative = path.relative_to(ROOT)
            if path.name == '__init__.py':
                found.add(f'{relative.parent.as_posix()}/')
            else:
                found.add(relative.as_posix())
    return found


def test_the_layout_names_only_paths_that_exist():
    paths = _layout_paths()
    assert len(paths) > len(PACKAGES)
    wrong = [path for path in paths if not (ROOT / path).exists() or (ROOT / path).is_dir() != path.endswith('/')]
    assert not wrong, ('docs/architecture.md (## Layout) names paths that are not in the tree (folders end in "/"): '
                       + ', '.join(wrong))


def test_the_layout_names_every_package_and_module():
    missing = sorted(_tree() - set(_layout_paths()))
    assert not missing, 'docs/architecture.md (## Layout) lacks a row for: ' + ', '.join(missing)


def test_the_layout_names_each_path_once():
    paths = _layout_paths()
    assert sorted({path for path in paths if paths.count(path) > 1}) == []


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings (code blocks skipped)."""
    anchors, fenced = set(), False
    for line in page.read_text().splitlines():
        if line.startswith('```'):
            fenced = not fenced
        elif not fenced and line.startswith('#'):
            title = line.lstrip('#').strip().lower()
            anchors.add(re.sub(r'[^\w\- ]', '', title).replace(' ', '-'))
    return anchors


@pytest.mark.parametrize('page', PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r'[a-z]+:', target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition('#')
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f'{target} (no such file)')
        elif anchor and file.suffix == '.md' and anchor not in _anchors(file):
            broken.append(f'{target} (no such heading)')
    assert not broken, f'{page.relative_to(ROOT)}: ' + ', '.join(broken)
