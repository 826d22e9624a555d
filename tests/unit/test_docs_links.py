"""The README and the pages of ``docs/`` link to files and sections that exist, and the README's figures are the pages'.

The README keeps a short table of headline figures and sends the reader to ``docs/`` for the rest; a moved
section or a renamed heading would leave a dead link, and a figure retyped in the README could drift from the
table it was copied from.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def anchors(path: Path) -> set[str]:
    """The ids GitHub gives the headings of a Markdown file (lower case, punctuation dropped, spaces as ``-``)."""
    headings = re.findall(r"^#{1,6} (.+)$", FENCE.sub("", path.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def links(path: Path) -> list[str]:
    """The relative targets of the file's Markdown links and images (web addresses left out)."""
    targets = re.findall(r"\]\(([^)\s]+)\)", FENCE.sub("", path.read_text()))
    return [t for t in targets if not re.match(r"[a-z]+:", t)]


def test_the_docs_pages_exist():
    names = {p.name for p in PAGES[1:]}
    assert {"usage.md", "evaluation.md", "model-card.md", "design.md", "development.md"} <= names, names


def test_every_link_reaches_a_file_and_a_heading():
    dead = []
    for page in PAGES:
        for target in links(page):
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists():
                dead.append(f"{page.relative_to(REPO)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                dead.append(f"{page.relative_to(REPO)}: {target} (no such heading)")
    assert not dead, "\n".join(dead)


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(REPO / t.partition("#")[0]).resolve() for t in links(REPO / "README.md")}
    assert not set(PAGES[1:]) - linked, sorted(p.name for p in set(PAGES[1:]) - linked)


def test_the_readme_figures_are_copied_from_the_pages():
    """Each figure of the README's headline table (a percentage, seconds, MB or a speed) stands in docs/ too."""
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Headline figures") : readme.index("## How a prediction is made")]
    rows = [row.split("|")[2] for row in table.splitlines() if row.startswith("| ") and "---" not in row][1:]
    figures = {f for row in rows for f in re.findall(r"\d+\.\d+(?:%| s|x)|\d+(?: MB|x)", row.replace("*", ""))}
    docs = " ".join(" ".join(p.read_text().replace("*", "").split()) for p in PAGES[1:])
    assert len(figures) >= 20, figures
    missing = sorted(f for f in figures if f not in docs)
    assert not missing, f"README figures not found in docs/: {missing}"
