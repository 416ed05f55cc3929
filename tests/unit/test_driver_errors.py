"""Driver errors are wrapped into the graph store's own error types."""

from __future__ import annotations

import pytest
from neo4j.exceptions import (
    AuthError,
    ClientError,
    ResultFailedError,
    ServiceUnavailable,
    SessionExpired,
)

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


def _failed_result(cause: Exception) -> ResultFailedError:
    """What the driver raises when a failed result is consumed again on rollback."""
    try:
        try:
            raise cause
        except Exception as e:
            raise ResultFailedError(None, "result failed") from e
    except ResultFailedError as failed:
        return failed


def test_a_failed_result_is_classified_by_its_cause() -> None:
    client = wrap(_failed_result(ClientError("no such index")))
    assert isinstance(client, GraphStoreError)
    assert not isinstance(client, GraphUnavailableError | GraphAuthError)
    assert isinstance(wrap(_failed_result(ServiceUnavailable("down"))), GraphUnavailableError)


def test_execute_turns_a_failed_result_into_a_graph_store_error() -> None:
    from graphstore.driver import execute

    class FailingDriver:
        def execute_query(self, *args: object, **kwargs: object) -> None:
            raise _failed_result(ClientError("no such index"))

    with pytest.raises(GraphStoreError):
        execute(FailingDriver(), "admin/get_version")  # type: ignore[arg-type]
