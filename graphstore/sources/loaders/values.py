"""Parsing a source's values: timestamps (epoch numbers in any unit, or ISO-8601), numbers
and booleans, each refused with a reason the loaders report as ``file:line: reason``."""

from __future__ import annotations

import math
from datetime import UTC, datetime

#: Epoch numbers by magnitude: below 1e11 seconds (up to the year 5138), below 1e14
#: milliseconds, below 1e17 microseconds, below 1e20 nanoseconds (from 1973-03-03 on for the
#: sub-second units: smaller values are read as seconds).
EPOCH_UNITS = ((1e11, "s", 1.0), (1e14, "ms", 1e3), (1e17, "us", 1e6), (1e20, "ns", 1e9))


def epoch_unit(number: float) -> tuple[str, float]:
    """``(unit, divisor)`` of an epoch number, recognised by its magnitude."""
    for limit, unit, divisor in EPOCH_UNITS:
        if abs(number) < limit:
            return unit, divisor
    raise ValueError(
        f"epoch timestamp {number:.0f} is too large for seconds, milliseconds, microseconds "
        "or nanoseconds"
    )


def parse_ts(value: str) -> float:
    """Epoch seconds from an epoch number or ISO-8601 text (naive times are taken as UTC).

    An epoch number's unit is recognised by its magnitude (:data:`EPOCH_UNITS`): seconds,
    milliseconds, microseconds or nanoseconds; a value too large for any is refused."""
    return parse_ts_unit(value)[0]


def parse_ts_unit(value: str) -> tuple[float, str | None]:
    """``(epoch seconds, unit of the epoch number or None for ISO-8601 text)``."""
    raw = value.strip()
    if not raw:
        raise ValueError("empty timestamp")
    unit: str | None = None
    try:
        number = float(raw)
    except ValueError:
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError(
                f"bad timestamp {value!r} (want ISO-8601 or an epoch number)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        ts = moment.timestamp()
    else:
        if not math.isfinite(number):
            raise ValueError(f"bad timestamp {value!r}")
        unit, divisor = epoch_unit(number)
        ts = number / divisor
    if not math.isfinite(ts):
        raise ValueError(f"bad timestamp {value!r}")
    return ts, unit


class Timestamps:
    """Parses one file's timestamps and holds it to one epoch unit: a file whose first epoch
    number was in milliseconds and a later one in seconds is refused at that line (a mixed
    log, or a value whose magnitude was misread)."""

    def __init__(self) -> None:
        self.unit: str | None = None
        self.first_line: int | None = None

    def parse(self, value: str, line: int) -> float:
        ts, unit = parse_ts_unit(value)
        if unit is None:
            return ts
        if self.unit is None:
            self.unit, self.first_line = unit, line
        elif unit != self.unit:
            raise ValueError(
                f"timestamp {value.strip()!r} reads as epoch {unit}, but line {self.first_line}'s"
                f" was in {self.unit}: one unit per file"
            )
        return ts


def parse_float(value: str, what: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"non-numeric {what} {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"non-numeric {what} {value!r}")
    return number


def parse_int(value: str, what: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"non-numeric {what} {value!r}") from None


_TRUE = frozenset({"1", "true", "t", "yes", "y"})
_FALSE = frozenset({"0", "false", "f", "no", "n"})


def parse_bool(value: str, what: str) -> bool:
    folded = value.strip().lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise ValueError(f"bad {what} {value!r} (want true/false, yes/no or 1/0)")
