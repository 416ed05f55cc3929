"""The static user features an export carries (``User.x``): scaled age with a known flag,
one-hot gender and occupation, built with numpy from rows (offline exports) or from the
columns the export statements return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

AGE_SCALE = 100.0


def user_features(rows: list[dict[str, Any]]) -> tuple[np.ndarray, list[str]]:
    """Static user features: scaled age (+ known flag), one-hot gender and occupation."""
    gender = [r.get("gender") for r in rows]
    occupation = [r.get("occupation") for r in rows]
    return feature_matrix(
        np.array([np.nan if r.get("age") is None else float(r["age"]) for r in rows]),
        np.array(["" if g is None else str(g) for g in gender], dtype=str),
        np.array([g is not None for g in gender], dtype=bool),
        np.array(["" if o is None else str(o) for o in occupation], dtype=str),
        np.array([o is not None for o in occupation], dtype=bool),
    )


def feature_matrix(
    age: np.ndarray,
    gender: np.ndarray,
    gender_known: np.ndarray,
    occupation: np.ndarray,
    occupation_known: np.ndarray,
) -> tuple[np.ndarray, list[str]]:
    """The feature matrix of :func:`user_features` from columns (age NaN when unknown),
    built with numpy: categories in sorted order, one column each."""
    genders, g_col = np.unique(gender[gender_known], return_inverse=True)
    occupations, o_col = np.unique(occupation[occupation_known], return_inverse=True)
    names = (
        ["age", "age_known"]
        + [f"gender={g}" for g in genders.tolist()]
        + [f"occ={o}" for o in occupations.tolist()]
    )
    x = np.zeros((len(age), len(names)), dtype=np.float32)
    known = ~np.isnan(age)
    x[known, 0] = age[known] / AGE_SCALE
    x[known, 1] = 1.0
    x[np.flatnonzero(gender_known), 2 + g_col] = 1.0
    x[np.flatnonzero(occupation_known), 2 + len(genders) + o_col] = 1.0
    return x, names


@dataclass(frozen=True)
class UserColumns:
    """Exported users' static features as columns, as the export statements return them:
    age NaN when unknown, gender and occupation ``''`` when unknown."""

    age: np.ndarray
    gender: np.ndarray
    occupation: np.ndarray

    @classmethod
    def of(cls, record: Any) -> UserColumns:
        age = np.asarray(record.get("age", []), dtype=np.float64)
        age[age < 0] = np.nan  # the statements' sentinel for a missing age
        return cls(
            age,
            np.asarray(record.get("gender", []), dtype=str),
            np.asarray(record.get("occupation", []), dtype=str),
        )

    def concat(self, other: UserColumns) -> UserColumns:
        return UserColumns(
            np.concatenate([self.age, other.age]),
            np.concatenate([self.gender, other.gender]),
            np.concatenate([self.occupation, other.occupation]),
        )

    def take(self, rows: np.ndarray) -> UserColumns:
        return UserColumns(self.age[rows], self.gender[rows], self.occupation[rows])

    def features(self) -> tuple[np.ndarray, list[str]]:
        return feature_matrix(
            self.age, self.gender, self.gender != "", self.occupation, self.occupation != ""
        )
