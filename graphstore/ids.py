"""The one rule for entity ids (users, items, events), shared by every entry point: the API's
paths and bodies, the dataset loaders and the feedback events.

An id is 1 to :data:`MAX_ID_LENGTH` characters from :data:`ID_ALPHABET` (ASCII letters,
digits, ``.``, ``_``, ``:``, ``-``) and starts with a letter or a digit. So an id is always
one literal URL path segment: it never holds ``/`` or ``%``, is never ``.`` or ``..`` (which
HTTP clients and servers rewrite), never starts with ``-`` (read as an option by command
lines) and needs no escaping in a path, a log line or a CSV cell.

Ids stored before the rule existed may break it; they can still be erased through
``POST /v1/users/erase`` (the id in a JSON body; docs/api.md).

Torch-free and neo4j-free: imported by the API, the loaders and the CLI alike.
"""

from __future__ import annotations

import re
from typing import Final

from graphstore.errors import GraphStoreError

#: Longest id accepted.
MAX_ID_LENGTH: Final = 128
#: Characters an id may hold (its first one: a letter or a digit).
ID_ALPHABET: Final = "A-Za-z0-9._:-"
#: The rule as a regular expression (also published in the API's OpenAPI schema).
ID_PATTERN: Final = rf"^[A-Za-z0-9][{ID_ALPHABET}]{{0,{MAX_ID_LENGTH - 1}}}$"

_ID = re.compile(ID_PATTERN)


class InvalidIdError(GraphStoreError, ValueError):
    """An id breaks the id rule; the message names what the id is for and the rule.

    A :class:`ValueError` too, so that pydantic validators turn it into a 422 field error.
    """


def is_valid_id(value: object) -> bool:
    """Whether ``value`` is a string that follows the id rule."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def validate_id(value: object, what: str = "id") -> str:
    """``value`` when it follows the id rule, else :class:`InvalidIdError` naming ``what``
    (e.g. ``"user_id"``) and, for a bad string, a short excerpt of it."""
    if not isinstance(value, str):
        raise InvalidIdError(f"{what} must be a string, not {type(value).__name__}")
    if _ID.fullmatch(value) is not None:
        return value
    raise InvalidIdError(f"{what} {excerpt(value)} is not a valid id: {describe(value)}")


def describe(value: str) -> str:
    """Why ``value`` breaks the rule, in words."""
    if not value:
        return "it is empty"
    if len(value) > MAX_ID_LENGTH:
        return f"it has {len(value)} characters, at most {MAX_ID_LENGTH} are allowed"
    if not (value[0].isascii() and value[0].isalnum()):
        return f"it must start with an ASCII letter or digit, not {value[0]!r}"
    bad = next(c for c in value if not _ID.fullmatch("a" + c))
    return f"{bad!r} is not allowed (allowed: ASCII letters, digits, '.', '_', ':', '-')"


def excerpt(value: str, limit: int = 40) -> str:
    """``value`` quoted, cut to ``limit`` characters (errors never echo long input)."""
    if len(value) <= limit:
        return repr(value)
    return repr(value[:limit]) + f"… ({len(value)} characters)"
