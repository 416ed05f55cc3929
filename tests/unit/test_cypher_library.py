"""Every shipped Cypher file: a header naming its purpose and parameters, and whitelisted
placeholders only."""

from __future__ import annotations

import re

import pytest

from graphstore import queries

NAMES = queries.names()


def test_library_is_not_empty() -> None:
    assert len(NAMES) > 20


@pytest.mark.parametrize("name", NAMES)
def test_header_names_purpose_and_parameters(name: str) -> None:
    text = queries.read(name)
    header = [line for line in text.splitlines() if line.startswith("//")]
    assert any("Purpose:" in line for line in header), name
    assert any("Parameters:" in line for line in header), name
    params = set(re.findall(r"\$([A-Za-z_]\w*)", _body(text)))
    documented = " ".join(header)
    for param in params:
        assert f"${param}" in documented, f"{name}: ${param} is not documented in the header"


def _body(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))


@pytest.mark.parametrize("name", NAMES)
def test_no_string_building_of_values(name: str) -> None:
    body = _body(queries.read(name))
    # A string literal glued to a parameter ('...' + $x, $x + '...') builds text from values;
    # arithmetic ($age + $window) does not.
    glued = re.search(r"""['"]\s*\+\s*\$|\$\w+\s*\+\s*['"]""", body)
    assert glued is None, "values must be parameters, not concatenated into strings"


def test_render_fills_whitelisted_names_only() -> None:
    text = queries.render("ingest/merge_interactions", type="CLICKED")
    assert "[r:CLICKED]" in text and "__TYPE__" not in _body(text)
    with pytest.raises(ValueError, match="not an allowed type"):
        queries.render("ingest/merge_interactions", type="CLICKED]->() DETACH DELETE (n")
    with pytest.raises(ValueError, match="not an allowed label"):
        queries.render("export/get_node_ids", label="Secret")


def test_render_refuses_statements_without_the_placeholder() -> None:
    with pytest.raises(queries.UnknownQueryError):
        queries.render("ingest/merge_users", type="CLICKED")


def test_unknown_and_escaping_names() -> None:
    with pytest.raises(queries.UnknownQueryError):
        queries.load("ingest/nope")
    with pytest.raises(queries.UnknownQueryError):
        queries.load("../pyproject")


def test_docs_list_every_statement_and_no_other() -> None:
    """docs/cypher.md, the data engineers' reference, has one entry per shipped statement."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "cypher.md").read_text()
    documented = re.findall(r"^### `([^`]+)`", doc, re.M)
    assert sorted(set(documented)) == sorted(documented), "an entry appears twice"
    assert set(NAMES) - set(documented) == set(), "statements without an entry in docs/cypher.md"
    assert set(documented) - set(NAMES) == set(), "docs/cypher.md lists statements that are gone"
