"""Segments recover the planted ones: a DP-GCN trained on a synthetic export, its users
segmented as the pipeline does (user vector joined with its neighbourhood, k chosen by the
eigengap criterion — not given), compared with the generator's truth by the adjusted Rand
index. The figures on ten graphs, old and new method, come from ``bench/bench_segments.py``
(see docs/segments.md)."""

from __future__ import annotations

import numpy as np
import pytest

from graphstore.export import export_source
from graphstore.sources import synthetic
from training.config import TrainConfig
from training.segments import SegmentConfig, adjusted_rand, cluster_users, export_neighbourhood

SPEC = synthetic.SyntheticSpec(users=400, items=150, events_per_user=30, n_segments=4, seed=3)
# trained to convergence (early stopping on validation NDCG@10, as every harness run), not a
# fixed number of epochs: the segments must be recovered from the model that is served
CONFIG = TrainConfig().replace(
    {"optim.epochs": 200, "model.dim": 32, "optim.patience": 10, "device": "cpu"}
)
MIN_ARI = 0.8


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from training.train import train_from_export

    root = tmp_path_factory.mktemp("segments-recovery")
    source, truth = synthetic.generate(SPEC)
    export_source(source, root / "export")
    train_from_export(root / "export", root / "model", CONFIG)
    with np.load(root / "model" / "embeddings.npz", allow_pickle=False) as emb:
        ids = [str(u) for u in emb["User.ids"]]
        vectors = emb["User.embedding"].copy()
        neighbourhood = export_neighbourhood(
            root / "export", ids, [str(i) for i in emb["Item.ids"]], emb["Item.embedding"]
        )
    index = {u: k for k, u in enumerate(truth.user_ids)}
    planted = np.asarray([truth.segment[index[u]] for u in ids])
    return vectors, neighbourhood, planted


def test_segments_recover_planted_segments_with_k_chosen(
    trained: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    vectors, neighbourhood, planted = trained
    found = cluster_users(vectors, SegmentConfig(k_min=2, k_max=10), neighbourhood)
    ari = adjusted_rand(planted, found.labels)
    print(
        f"eigengap chose k={found.k} ({found.components} kNN graph components, gaps "
        f"{found.eigengap_by_k}); ARI {ari:.3f}"
    )
    assert found.criterion == "eigengap" and found.neighbourhood
    assert found.k == SPEC.n_segments
    assert ari >= MIN_ARI


def test_segments_recover_planted_segments_at_the_planted_k(
    trained: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    vectors, neighbourhood, planted = trained
    found = cluster_users(vectors, SegmentConfig(k=SPEC.n_segments), neighbourhood)
    ari = adjusted_rand(planted, found.labels)
    print(f"adjusted Rand index (k fixed to {SPEC.n_segments}): {ari:.3f}")
    assert found.criterion == "fixed" and ari >= MIN_ARI


def test_the_old_silhouette_rule_is_still_available(
    trained: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    vectors, _, planted = trained
    found = cluster_users(vectors, SegmentConfig(k_min=2, k_max=8, criterion="silhouette"))
    ari = adjusted_rand(planted, found.labels)
    print(f"silhouette chose k={found.k} (by k: {found.silhouette_by_k}); ARI {ari:.3f}")
    assert found.criterion == "silhouette" and 2 <= found.k <= 8 and not found.neighbourhood
    assert found.silhouette == pytest.approx(max(found.silhouette_by_k.values()), abs=1e-4)
    assert ari > 0.4  # far above chance even when it merges overlapping segments
