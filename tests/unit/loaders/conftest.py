"""Fixtures for the loader tests: the shared real datasets (tests skip when
the shared data folder is absent) and a small generic-format dataset written into tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.paths import DATA_DIR

DATA = DATA_DIR

USERS_CSV = """\
id,age,gender,occupation,consent
u1,34,F,engineer,true
u2,,M,,no
u3,51,,teacher,
"""

ITEMS_CSV = """\
id,title,price,category
i1,Forza Motorsport 4,59.99,Games > Racing
i2,Gran Turismo 5,39.5,Games>Racing
i3,Halo Reach,19.99,Games > Shooters|Deals
i4,Wireless Headset,,Electronics > Audio > Headphones
"""

EVENTS_CSV = """\
event_id,user,type,item,query,ts,rating
e1,u1,search,,Racing games,2024-01-01T10:00:00Z,
e2,u1,click,i1,racing game,2024-01-01T10:00:30Z,
e3,u1,purchase,i1,racing game,2024-01-01T10:05:00+00:00,
e4,u2,view,i3,,1704103200,
e5,u2,rate,i3,,1704103300,4
e6,u2,rate,i3,,1704103400.5,5
e7,u3,search,,games for racing,2024-01-02T09:00:00,
e8,u3,click,i2,games for racing,2024-01-02T09:00:10,
e8,u3,click,i2,games for racing,2024-01-02T09:00:10,
e9,u1,click,i1,,2024-01-03 00:00:00,
"""


def write_generic(directory: Path, **overrides: str) -> Path:
    """The generic fixture in ``directory``; ``overrides`` replace a file's text by name
    (``users``, ``items``, ``events``); an empty string leaves that file out."""
    directory.mkdir(parents=True, exist_ok=True)
    texts = {"users": USERS_CSV, "items": ITEMS_CSV, "events": EVENTS_CSV, **overrides}
    for stem, text in texts.items():
        if text:
            (directory / f"{stem}.csv").write_text(text, encoding="utf-8")
    return directory


@pytest.fixture
def generic_dir(tmp_path: Path) -> Path:
    return write_generic(tmp_path / "generic")


@pytest.fixture
def make_generic() -> Callable[..., Path]:
    return write_generic


def _shared(folder: str) -> Path:
    """The shared dataset folder, or skip the test when the shared data is not mounted."""
    if not DATA.is_dir():
        pytest.skip(f"{DATA_DIR} is not available")
    path = DATA / folder
    assert path.is_dir(), f"{path} is missing from the shared data"
    return path


@pytest.fixture
def ml100k() -> Path:
    return _shared("ml-100k")


@pytest.fixture
def bestbuy_dir() -> Path:
    return _shared("bestbuy-xbox-small")


@pytest.fixture
def jd_dir() -> Path:
    return _shared("jdsearch-sample")


@pytest.fixture
def din_dir() -> Path:
    return _shared("amazon-electronics-din-sample")
