"""Citations of the project's docs stay true: every ``docs/X.md, "Section"`` named in the code or
the tests is a file of the repository with a heading that starts with that section name, and no
file cites a path outside the repository."""

import re

import pytest

from conftest import REPO

SOURCES = sorted([*(REPO / "src").rglob("*.py"), *(REPO / "tests").rglob("*.py"),
                  *(REPO / "scripts").glob("*.py"), *(REPO / "configs").rglob("*.py")])
SOURCES = [p for p in SOURCES if p.name != "test_docs_citations.py"]
CITATION = re.compile(r"(docs/[\w/]+\.md)(?:,\s*|\s*\()?(?:\(?\s*\"([^\"]+)\")?")


def _citations():
  for path in SOURCES:
    text = re.sub(r"\s*\n\s*(?:#\s*)?", " ", path.read_text())  # join wrapped lines
    for doc, section in CITATION.findall(text):
      yield path.relative_to(REPO), doc, section


@pytest.mark.parametrize("source,doc,section", sorted(set(_citations())))
def test_cited_doc_and_section_exist(source, doc, section):
  target = REPO / doc
  assert target.exists(), f"{source} cites {doc}, which does not exist"
  if section:
    headings = [h.strip() for h in re.findall(r"^#+ (.+)$", target.read_text(), re.M)]
    assert any(h.startswith(section.rstrip(".")) for h in headings), \
        f"{source} cites {doc} section {section!r}; headings: {headings}"


def test_nothing_cites_files_outside_the_repository():
  bad = [str(p.relative_to(REPO)) for p in SOURCES
         if re.search(r"notes/conventions|shared/notes", p.read_text())]
  assert not bad, bad
