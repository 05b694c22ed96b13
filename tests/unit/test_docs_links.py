"""Links in the project's Markdown point at files that exist, and anchors at headings that exist.

A reader who follows a link from the README or docs/ should land on the file it names; renames
used to leave links behind. Checked in every tracked .md file: relative Markdown links
`[text](path#anchor)`, `#anchor` links against the headings of the target (GitHub's slug rules), and
paths quoted as code that start at a top-level directory of the repository (`hack/lib/node.sh`).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def markdown_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / name for name in listed.stdout.split()]


def slug(heading: str) -> str:
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}


def links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    return [m.group(1) for m in LINK.finditer(text)]


CASES = [
    (md, target) for md in markdown_files() for target in links(md) if not re.match(r"^[a-z][a-z0-9+.-]*:", target)
]


@pytest.mark.parametrize(
    ("document", "target"), CASES, ids=[f"{md.relative_to(ROOT)}->{target}" for md, target in CASES]
)
def test_relative_link_resolves(document: Path, target: str) -> None:
    file_part, _, anchor = target.partition("#")
    resolved = (document.parent / file_part).resolve() if file_part else document
    assert resolved.exists(), f"{document.relative_to(ROOT)} links to {file_part}, which does not exist"
    if anchor and resolved.suffix == ".md":
        assert anchor.lower() in anchors(resolved), (
            f"{document.relative_to(ROOT)} links to #{anchor} in {resolved.relative_to(ROOT)}, no such heading"
        )


def quoted_paths(path: Path) -> list[str]:
    tops = {child.name for child in ROOT.iterdir() if not child.name.startswith(".")}
    found = []
    for token in re.findall(r"`([^`\s]+)`", path.read_text()):
        token = token.rstrip(".,:;")
        # Placeholders (<agent>), globs and line/anchor suffixes are not file names.
        if "/" not in token or token.split("/")[0] not in tops or any(c in token for c in "<*{$"):
            continue
        found.append(token.split("#")[0].split(":")[0])
    return found


PATHS = sorted({(md, quoted) for md in markdown_files() for quoted in quoted_paths(md)})


@pytest.mark.parametrize(
    ("document", "quoted"), PATHS, ids=[f"{md.relative_to(ROOT)}:{quoted}" for md, quoted in PATHS]
)
def test_quoted_repository_path_exists(document: Path, quoted: str) -> None:
    assert (ROOT / quoted).exists(), f"{document.relative_to(ROOT)} names {quoted}, which does not exist"


def test_the_check_sees_links() -> None:
    # Guards the patterns themselves: the README names the operations guide and links out.
    readme = ROOT / "README.md"
    assert links(readme) and "docs/operations.md" in quoted_paths(readme)
