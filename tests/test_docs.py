"""The README and docs/ stand alone: they name no path outside the repository, and every relative link
between them resolves to a file of the repository."""

import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")  # markdown link targets
PARENT = re.compile(r"(?<![\w.])\.\./")  # a path that climbs out of the folder it is read from


def _outside_links_removed(text: str) -> str:
    return LINK.sub("]()", text)


def test_the_documentation_pages_exist():
    names = {page.name for page in PAGES}
    assert {"README.md", "paper.md", "scripts.md", "datasets.md", "own-data.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_no_path_outside_the_repository(page):
    for number, line in enumerate(_outside_links_removed(page.read_text()).splitlines(), start=1):
        assert not PARENT.search(line), f"{page.relative_to(REPO)}:{number} names a path above it: {line.strip()}"


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_relative_links_resolve_inside_the_repository(page):
    for target in LINK.findall(page.read_text()):
        if "://" in target or target.startswith(("#", "mailto:")):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        assert path.is_relative_to(REPO), f"{page.relative_to(REPO)} links outside the repository: {target}"
        assert path.exists(), f"{page.relative_to(REPO)} links to a missing file: {target}"
