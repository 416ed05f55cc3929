"""Small random export directories in the ``docs/export-format.md`` layout, for tests and the
training benchmark. Users, items, queries and terms belong to latent clusters so that models
have something to learn; interactions are time-stamped so the leave-one-out split is
deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ALL_RELATIONS = (
    "User__CLICKED__Item",
    "User__PURCHASED__Item",
    "User__VIEWED__Item",
    "User__SEARCHED__Query",
    "Query__LED_TO__Item",
    "Query__HAS_TERM__Term",
    "Item__HAS_TERM__Term",
    "Item__IN_CATEGORY__Category",
)


def write_random_export(
    path: Path,
    n_users: int = 60,
    n_items: int = 40,
    n_queries: int = 20,
    n_terms: int = 15,
    n_categories: int = 4,
    interactions_per_user: int = 8,
    seed: int = 0,
    relations: tuple[str, ...] = ALL_RELATIONS,
    with_features: bool = True,
    clusters: int = 4,
) -> Path:
    """Write ``meta.json`` + ``graph.npz`` under ``path`` and return ``path``."""
    rng = np.random.default_rng(seed)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    u_c = rng.integers(0, clusters, n_users)
    i_c = rng.integers(0, clusters, n_items)
    q_c = rng.integers(0, clusters, max(n_queries, 1))
    t_c = rng.integers(0, clusters, max(n_terms, 1))
    arrays: dict[str, np.ndarray] = {}
    counts = {"User": n_users, "Item": n_items}
    if n_queries:
        counts["Query"] = n_queries
    if n_terms:
        counts["Term"] = n_terms
    if n_categories:
        counts["Category"] = n_categories
    for label, n in counts.items():
        prefix = {"User": "u", "Item": "i", "Query": "q", "Term": "t", "Category": "c"}[label]
        if label == "Query":
            ids = [f"query {q_c[j]} {j}" for j in range(n)]
        else:
            ids = [f"{prefix}{j}" for j in range(n)]
        arrays[f"{label}.ids"] = np.array(ids, dtype=str)
    features: list[str] = []
    if with_features:
        occ = rng.integers(0, 3, n_users)
        x = np.zeros((n_users, 6), np.float32)
        x[:, 0] = np.clip(u_c / max(clusters - 1, 1) + rng.normal(0, 0.1, n_users), 0, 1)
        g = rng.integers(0, 2, n_users)
        x[np.arange(n_users), 1 + g] = 1.0
        x[np.arange(n_users), 3 + occ] = 1.0
        arrays["User.x"] = x
        features = ["age", "gender=F", "gender=M", "occ=a", "occ=b", "occ=c"]

    def pick_items(c: int, n: int) -> np.ndarray:
        same = np.flatnonzero(i_c == c)
        out = rng.integers(0, n_items, n)
        mask = (rng.random(n) < 0.8) & (len(same) > 0)
        if len(same):
            out[mask] = rng.choice(same, mask.sum())
        return out

    users, items = [], []
    for u in range(n_users):
        n = max(1, int(rng.poisson(interactions_per_user)))
        users.append(np.full(n, u))
        items.append(pick_items(int(u_c[u]), n))
    uu, ii = np.concatenate(users), np.concatenate(items)
    times = 1.7e9 + np.arange(len(uu)) * 60.0 + rng.random(len(uu))
    kind = rng.random(len(uu))
    edges: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {
        "User__CLICKED__Item": (uu[kind < 0.6], ii[kind < 0.6], times[kind < 0.6]),
        "User__PURCHASED__Item": (uu[kind > 0.9], ii[kind > 0.9], times[kind > 0.9]),
        "User__VIEWED__Item": (
            uu[(kind >= 0.6) & (kind <= 0.9)],
            ii[(kind >= 0.6) & (kind <= 0.9)],
            times[(kind >= 0.6) & (kind <= 0.9)],
        ),
    }
    if n_queries:
        su = rng.integers(0, n_users, n_users * 3)
        sq = np.array(
            [
                rng.choice(np.flatnonzero(q_c == u_c[u]))
                if (q_c == u_c[u]).any()
                else rng.integers(0, n_queries)
                for u in su
            ]
        )
        edges["User__SEARCHED__Query"] = (su, sq, 1.7e9 + rng.random(len(su)) * 1e5)
        lq = rng.integers(0, n_queries, n_queries * 3)
        li = np.array([pick_items(int(q_c[q]), 1)[0] for q in lq])
        edges["Query__LED_TO__Item"] = (lq, li, np.full(len(lq), np.nan))
    if n_terms and n_queries:
        tq = np.repeat(np.arange(n_queries), 2)
        tt = np.array(
            [rng.choice(np.flatnonzero(t_c == q_c[q])) if (t_c == q_c[q]).any() else 0 for q in tq]
        )
        edges["Query__HAS_TERM__Term"] = (tq, tt, np.full(len(tq), np.nan))
    if n_terms:
        ti = np.repeat(np.arange(n_items), 2)
        tt = np.array(
            [rng.choice(np.flatnonzero(t_c == i_c[i])) if (t_c == i_c[i]).any() else 0 for i in ti]
        )
        edges["Item__HAS_TERM__Term"] = (ti, tt, np.full(len(ti), np.nan))
    if n_categories:
        ci = np.arange(n_items)
        edges["Item__IN_CATEGORY__Category"] = (ci, i_c % n_categories, np.full(n_items, np.nan))
    edge_types = []
    for name, (src, dst, t) in edges.items():
        if name not in relations:
            continue
        arrays[f"{name}.edge_index"] = np.stack([src, dst]).astype(np.int64)
        arrays[f"{name}.time"] = np.asarray(t, np.float64)
        arrays[f"{name}.weight"] = np.ones(len(src), np.float32)
        edge_types.append(name.split("__"))
    np.savez(path / "graph.npz", **arrays)
    meta = {
        "format": 1,
        "created_at": "2026-11-26T23:30:00Z",
        "node_types": {
            label: {"count": n, "features": features if label == "User" else []}
            for label, n in counts.items()
        },
        "edge_types": edge_types,
        "filters": {"scope": "all"},
    }
    (path / "meta.json").write_text(json.dumps(meta))
    return path


def write_ml100k_export(source: Path, path: Path) -> Path:
    """Convert the MovieLens-100K files in ``source`` (u.data, u.user, u.item, u.genre) into an
    export directory: users with age/gender/occupation features, movies, genres as categories,
    title words as terms, ratings as ``User__RATED__Item`` (weight = rating, time = timestamp).
    For quality sanity checks only; the data stays where it is (nothing is copied into the
    repository)."""
    import re

    source, path = Path(source), Path(path)
    path.mkdir(parents=True, exist_ok=True)
    users = [line.split("|") for line in (source / "u.user").read_text().splitlines() if line]
    items = [
        line.split("|")
        for line in (source / "u.item").read_text(encoding="latin-1").splitlines()
        if line
    ]
    genres = [line.split("|")[0] for line in (source / "u.genre").read_text().splitlines() if line]
    user_row = {u[0]: i for i, u in enumerate(users)}
    item_row = {m[0]: i for i, m in enumerate(items)}
    occupations = sorted({u[3] for u in users})
    x = np.zeros((len(users), 3 + len(occupations)), np.float32)
    ages = np.array([float(u[1]) for u in users])
    x[:, 0] = (ages - ages.min()) / max(ages.max() - ages.min(), 1.0)
    for i, u in enumerate(users):
        x[i, 1 if u[2] == "F" else 2] = 1.0
        x[i, 3 + occupations.index(u[3])] = 1.0
    ratings = np.loadtxt(source / "u.data", dtype=np.int64)
    stop = {"the", "a", "an", "of", "and", "in", "to", "la", "le", "de"}
    terms: dict[str, int] = {}
    it_src, it_dst, ic_src, ic_dst = [], [], [], []
    for i, m in enumerate(items):
        title = re.sub(r"\(\d{4}\)", "", m[1]).lower()
        for w in sorted(set(re.findall(r"[a-z]{3,}", title)) - stop):
            it_src.append(i)
            it_dst.append(terms.setdefault(w, len(terms)))
        for g, flag in enumerate(m[5 : 5 + len(genres)]):
            if flag == "1":
                ic_src.append(i)
                ic_dst.append(g)
    arrays: dict[str, np.ndarray] = {
        "User.ids": np.array([f"ml-u{u[0]}" for u in users]),
        "User.x": x,
        "Item.ids": np.array([f"ml-i{m[0]}" for m in items]),
        "Category.ids": np.array(genres),
        "Term.ids": np.array(list(terms)),
        "User__RATED__Item.edge_index": np.stack(
            [
                np.array([user_row[str(u)] for u in ratings[:, 0]]),
                np.array([item_row[str(i)] for i in ratings[:, 1]]),
            ]
        ).astype(np.int64),
        "User__RATED__Item.time": ratings[:, 3].astype(np.float64),
        "User__RATED__Item.weight": ratings[:, 2].astype(np.float32),
        "Item__HAS_TERM__Term.edge_index": np.array([it_src, it_dst], dtype=np.int64),
        "Item__HAS_TERM__Term.time": np.full(len(it_src), np.nan),
        "Item__HAS_TERM__Term.weight": np.ones(len(it_src), np.float32),
        "Item__IN_CATEGORY__Category.edge_index": np.array([ic_src, ic_dst], dtype=np.int64),
        "Item__IN_CATEGORY__Category.time": np.full(len(ic_src), np.nan),
        "Item__IN_CATEGORY__Category.weight": np.ones(len(ic_src), np.float32),
    }
    np.savez(path / "graph.npz", **arrays)
    features = ["age", "gender=F", "gender=M"] + [f"occ={o}" for o in occupations]
    meta = {
        "format": 1,
        "created_at": "1998-04-01T00:00:00Z",
        "node_types": {
            "User": {"count": len(users), "features": features},
            "Item": {"count": len(items), "features": []},
            "Category": {"count": len(genres), "features": []},
            "Term": {"count": len(terms), "features": []},
        },
        "edge_types": [
            ["User", "RATED", "Item"],
            ["Item", "HAS_TERM", "Term"],
            ["Item", "IN_CATEGORY", "Category"],
        ],
        "filters": {"scope": "all", "source": "ml-100k"},
    }
    (path / "meta.json").write_text(json.dumps(meta))
    return path
