"""The README and docs/ are the front door: they must stay true to the code and to the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.config import Settings

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [README, *DOCS]
ALL_TEXT = "\n".join(page.read_text() for page in PAGES)

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return {_anchor(h) for h in _HEADING.findall(text)}


def test_every_setting_is_documented() -> None:
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in ALL_TEXT]
    assert missing == []


def test_the_two_commands_are_the_makefile_verbs_ci_uses() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    text = README.read_text()
    assert "make run" in text and "make test" in text
    assert ci.rstrip().splitlines()[-1].strip() == "make test"


def test_readme_is_a_front_door() -> None:
    assert len(README.read_bytes()) < 15 * 1024


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_every_link_resolves(page: Path) -> None:
    broken = []
    for target in _LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path_part, _, fragment = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists() or (fragment and resolved.suffix == ".md" and fragment not in _anchors(resolved)):
            broken.append(target)
    assert broken == []


_CODE_PATH = re.compile(
    r"`((?:api|workers|shared|loopera|tests|bench|deploy|docs|sandbox)/[\w./-]+|[\w.-]+\.(?:py|md|yml|json|lua))`"
)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_files_named_in_the_docs_exist(page: Path) -> None:
    """A doc that names a file names one that is in the repository (no references to documents elsewhere)."""
    missing = []
    for name in _CODE_PATH.findall(page.read_text()):
        candidates = [REPO / name, *(REPO.glob(f"**/{name}") if "/" not in name else [])]
        if not any(c.exists() for c in candidates):
            missing.append(name)
    assert missing == []
