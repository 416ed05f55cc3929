"""Driver errors are wrapped into the graph store's own error types."""

from __future__ import annotations

import pytest
from neo4j.exceptions import AuthError, ClientError, ServiceUnavailable, SessionExpired

from graphstore.driver import wrap
from graphstore.errors import GraphAuthError, GraphStoreError, GraphUnavailableError


@pytest.mark.parametrize(
    "error",
    [ServiceUnavailable("down"), SessionExpired("gone"), ConnectionRefusedError("refused")],
)
def test_outages_become_unavailable(error: Exception) -> None:
    assert isinstance(wrap(error), GraphUnavailableError)


def test_auth_and_other_errors() -> None:
    assert isinstance(wrap(AuthError("no")), GraphAuthError)
    other = wrap(ClientError("syntax"))
    assert isinstance(other, GraphStoreError)
    assert not isinstance(other, GraphUnavailableError | GraphAuthError)
