"""The README and docs/*.md point only at files that exist in the repository, and never outside it."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# [text](target) and [text](target "title"); images too. Reference-style definitions: [label]: target
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
_HTML_LINK = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""")
# A code span that names a file of the repository: a relative path with a directory and a file extension.
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_FILE_PATH = re.compile(
    r"^(?:\.{1,2}/)*[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)+\.(?:py|md|ya?ml|toml|txt|sh|html|json|cfg)$"
)
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.\-]*:|//)", re.IGNORECASE)  # https:, mailto:, //host


def _links(text: str) -> list[str]:
    return [*_INLINE_LINK.findall(text), *_REFERENCE_LINK.findall(text), *_HTML_LINK.findall(text)]


def _named_files(text: str) -> list[str]:
    return [span.strip() for span in _CODE_SPAN.findall(text) if _FILE_PATH.match(span.strip())]


def _inside(path: Path) -> bool:
    return path == ROOT or ROOT in path.parents


def _problems(document: Path, text: str | None = None) -> list[str]:
    text = document.read_text(encoding="utf-8") if text is None else text
    problems = []
    for target in _links(text):
        if _EXTERNAL.match(target) or target.startswith("#"):
            continue
        relative = target.split("#", 1)[0].split("?", 1)[0]
        if not relative:
            continue
        if relative.startswith("/"):
            problems.append(f"link {target!r} is absolute; make it relative to {document.name}")
            continue
        resolved = (document.parent / relative).resolve()
        if not _inside(resolved):
            problems.append(f"link {target!r} points outside the repository")
        elif not resolved.exists():
            problems.append(f"link {target!r} points to nothing ({resolved.relative_to(ROOT)} does not exist)")
    for name in _named_files(text):
        # Code paths in the documents are relative to the repository root.
        resolved = (ROOT / name).resolve()
        if name.startswith("../") or not _inside(resolved):
            problems.append(f"path `{name}` is outside the repository")
        elif not resolved.is_file():
            problems.append(f"path `{name}` names no file of the repository")
    if re.search(r"(?<![\w.])\.\./", text) and document.parent == ROOT:
        problems.append("mentions a path starting with ../ (outside the repository)")
    return problems


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_link_and_path_points_into_the_repository(document):
    assert not _problems(document), "\n".join(_problems(document))


def test_the_architecture_document_exists_and_the_readme_links_to_it():
    assert (ROOT / "docs" / "architecture.md").is_file()
    assert "(docs/architecture.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_checker_catches_broken_and_outside_links():
    text = (
        "[ok](../README.md) [gone](missing.md) [out](../../elsewhere/DESIGN.md) [web](https://example.org) "
        "[anchor](#layout) `platform_site/tenancy.py` `no_such_app/models.py` `../shared/DESIGN.md` "
        '<a href="../nowhere.md">x</a>'
    )
    problems = _problems(ROOT / "docs" / "sample.md", text)
    joined = "\n".join(problems)
    assert "'missing.md' points to nothing" in joined
    assert "'../../elsewhere/DESIGN.md' points outside the repository" in joined
    assert "`no_such_app/models.py` names no file" in joined
    assert "`../shared/DESIGN.md` is outside the repository" in joined
    assert "'../nowhere.md' points to nothing" in joined
    assert "README.md'" not in joined and "tenancy.py" not in joined and "example.org" not in joined
    assert len(problems) == 5
    # At the root, any ../ leaves the repository.
    assert any("../" in problem for problem in _problems(ROOT / "README.md", "The map is `../shared/DESIGN.md`."))
