"""Segmentation maths (training.segments), the Browser style sheet and Cypher tracing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import graphstore
from dpgcn import browser_style, neo4j_install, neo4j_server
from graphstore import queries
from graphstore.segments import segment_name, unique_names
from training.segments import (
    SegmentConfig,
    SegmentError,
    adjusted_rand,
    cluster_users,
    eigengaps,
    lift,
    membership_scores,
    neighbourhood_vectors,
    normalize_rows,
    project_2d,
)


def blobs(k: int, per: int, dim: int = 8, spread: float = 0.05, seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (k, dim))
    truth = np.repeat(np.arange(k), per)
    return centres[truth] + rng.normal(0, spread, (k * per, dim)), truth


@pytest.mark.parametrize("criterion", ["eigengap", "silhouette"])
def test_criteria_find_the_number_of_blobs(criterion: str) -> None:
    x, truth = blobs(4, 60)
    seg = cluster_users(x, SegmentConfig(k_min=2, k_max=8, criterion=criterion))
    assert seg.k == 4 and seg.criterion == criterion
    assert adjusted_rand(truth, seg.labels) == pytest.approx(1.0)
    assert set(seg.silhouette_by_k) == set(range(2, 9))
    if criterion == "silhouette":
        assert seg.silhouette == pytest.approx(max(seg.silhouette_by_k.values()), abs=1e-4)
    else:
        assert set(seg.eigengap_by_k) == set(range(2, 9))
        assert max(seg.eigengap_by_k, key=lambda k: seg.eigengap_by_k[k]) == 4


def test_eigengap_separates_what_silhouette_merges() -> None:
    """Two far groups, one of them made of two close blobs: silhouette prefers 2 segments,
    the kNN graph's eigengap sees the 3 groups."""
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0, 8.0], [0.0, 1.5, 8.0], [8.0, 0.0, 0.0]])
    truth = np.repeat(np.arange(3), 80)
    x = centres[truth] + rng.normal(0, 0.15, (240, 3))
    gap = cluster_users(x, SegmentConfig(k_min=2, k_max=6))
    sil = cluster_users(x, SegmentConfig(k_min=2, k_max=6, criterion="silhouette"))
    assert gap.k == 3 and adjusted_rand(truth, gap.labels) == pytest.approx(1.0)
    assert sil.k == 2


def test_separate_components_of_the_knn_graph_are_the_segments() -> None:
    """Three far-apart groups with a loose inside (each two touching blobs): the kNN graph has
    three components (three exact zero eigenvalues), but the largest eigengap lies further up
    the spectrum, inside the groups. The components are the segments."""
    rng = np.random.default_rng(0)
    far = np.array([[10.0, 0, 0], [0, 10.0, 0], [0, 0, 10.0]])
    centres = (far[:, None, :] + np.array([[0.0, 0, 0], [0.3, 0, 0]])[None]).reshape(6, 3)
    truth = np.repeat(np.arange(6), 40) // 2
    x = centres[np.repeat(np.arange(6), 40)] + rng.normal(0, 0.1, (240, 3))
    seg = cluster_users(x, SegmentConfig(k_min=2, k_max=8, knn=10))
    gaps = seg.eigengap_by_k
    assert max(gaps, key=lambda k: gaps[k]) != 3  # the gap alone would split the groups
    assert seg.components == 3 and seg.k == 3 and seg.criterion == "eigengap"
    assert adjusted_rand(truth, seg.labels) == pytest.approx(1.0)


def test_eigengaps_of_separate_groups() -> None:
    x, _ = blobs(3, 30, spread=0.01)
    gaps = eigengaps(normalize_rows(x), [2, 3, 4], knn=5)
    assert max(gaps, key=lambda k: gaps[k]) == 3 and gaps[2] == pytest.approx(0, abs=1e-9)


def test_neighbourhood_vectors_are_weighted_means_of_item_directions() -> None:
    items = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    nb = neighbourhood_vectors(3, items, np.array([0, 0, 1]), np.array([0, 1, 2]), [3.0, 1.0, 2])
    assert nb[0] == pytest.approx([0.75, 0.25])
    assert nb[1] == pytest.approx([2**-0.5, 2**-0.5])
    assert nb[2].tolist() == [0.0, 0.0]  # no interactions
    with pytest.raises(SegmentError, match="out of range"):
        neighbourhood_vectors(1, items, np.array([1]), np.array([0]))
    with pytest.raises(SegmentError, match="length"):
        neighbourhood_vectors(2, items, np.array([0, 1]), np.array([0]))


def test_neighbourhood_joins_the_features() -> None:
    x, truth = blobs(3, 30)
    # The user vectors alone are noise; their neighbourhoods carry the groups.
    noise = np.random.default_rng(2).normal(0, 1, x.shape)
    seg = cluster_users(noise, SegmentConfig(k=3), neighbourhood=x)
    assert seg.neighbourhood and adjusted_rand(truth, seg.labels) > 0.5
    alone = cluster_users(noise, SegmentConfig(k=3))
    assert adjusted_rand(truth, alone.labels) < 0.2
    with pytest.raises(SegmentError, match="neighbourhood"):
        cluster_users(x, neighbourhood=x[:5])


def test_fixed_k_numbers_segments_by_size() -> None:
    x, _ = blobs(3, 40)
    x = np.vstack([x, x[:30] + 0.01])  # segment of the first blob grows to 70
    seg = cluster_users(x, SegmentConfig(k=3))
    sizes = seg.sizes()
    assert seg.criterion == "fixed" and list(sizes) == sorted(sizes, reverse=True)
    assert sizes[0] == 70


def test_membership_scores_are_margins() -> None:
    centres = np.array([[0.0, 0.0], [2.0, 0.0]])
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 0.0]])
    scores = membership_scores(x, centres, np.array([0, 0, 0]))
    assert scores[0] == pytest.approx(1.0)
    assert scores[1] == pytest.approx(0.0)
    assert scores[2] == pytest.approx(1 - 0.5 / 1.5)


def test_bad_input_is_refused() -> None:
    with pytest.raises(SegmentError, match="too few"):
        cluster_users(np.ones((2, 3)), SegmentConfig(k=3))
    with pytest.raises(SegmentError, match="NaN"):
        cluster_users(np.full((10, 2), np.nan))
    with pytest.raises(SegmentError, match="matrix"):
        cluster_users(np.ones(10))
    with pytest.raises(SegmentError, match="k range"):
        SegmentConfig(k_min=5, k_max=3)
    with pytest.raises(SegmentError):
        SegmentConfig(k=1)
    with pytest.raises(SegmentError, match="criterion"):
        SegmentConfig(criterion="elbow")


def test_lift() -> None:
    counts = np.array([[8, 2], [2, 8]])
    out = lift(counts)
    assert out[0, 0] == pytest.approx((8 / 10) / (10 / 20))
    assert out[0, 1] == pytest.approx((2 / 10) / (10 / 20))
    assert lift(np.array([[0, 0], [1, 1]]))[0].tolist() == [0.0, 0.0]


def test_names_are_readable_and_unique() -> None:
    assert segment_name(["Kalo mi", "Tefe  ra", "Third"], ["kalo", "zute"]) == (
        "Kalo mi & Tefe ra · “zute”"
    )
    assert segment_name([], [], ["cheap kalo"]) == "“cheap kalo”"
    assert segment_name([]) == "General audience"
    assert unique_names(["A", "B", "A", "A"]) == ["A", "B", "A (2)", "A (3)"]


def test_projection_is_two_dimensional() -> None:
    x, _ = blobs(3, 10)
    assert project_2d(x).shape == (30, 2)
    assert project_2d(np.ones((5, 1))).shape == (5, 2)


def test_browser_style_is_one_post_connect_command() -> None:
    grass = (Path(graphstore.__file__).parent / "assets" / "browser" / "style.grass").read_text()
    rules = browser_style.parse_grass(grass)
    labels = ("User", "Item", "Query", "Term", "Category", "Segment", "ArchivedSegment")
    for label in labels:
        assert rules[f"node.{label}"]["caption"].startswith("{"), label
    colours = {rules[f"node.{lb}"]["color"] for lb in labels}
    assert len(colours) == len(labels), "every label has its own colour"
    command = browser_style.browser_style_command()
    assert command.startswith("style {") and ";" not in command and "#" not in command
    data = json.loads(command.removeprefix("style "))
    assert data["node.Segment"]["color"] == "rgb(255, 216, 110)"
    assert data["node.Segment"]["caption"] == "{name}"


def test_config_carries_the_browser_settings(tmp_path: Path) -> None:
    spec = neo4j_install.Neo4jServerSpec(home=tmp_path, cache=tmp_path, secrets_dir=tmp_path)
    conf = neo4j_server.write_config(spec).read_text().splitlines()
    assert f"browser.post_connect_cmd={browser_style.browser_style_command()}" in conf
    assert "browser.remote_content_hostname_whitelist=127.0.0.1,localhost" in conf


def test_loaded_statements_are_traced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(queries.TRACE_ENV, str(tmp_path))
    queries.load.cache_clear()
    queries.render.cache_clear()
    try:
        queries.read("segments/list_segments")
        assert queries.traced_names(tmp_path) == set()
        queries.load("segments/list_segments")
        queries.render("segments/merge_affinities", label="Term")
        assert queries.traced_names(tmp_path) == {
            "segments/list_segments",
            "segments/merge_affinities",
        }
        assert (tmp_path / f"{os.getpid()}.names").exists()
    finally:
        queries.load.cache_clear()
        queries.render.cache_clear()
