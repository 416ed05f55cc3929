"""The relation stack's CSR matrices, built by sorting entries, against coalesced COO tensors."""

from __future__ import annotations

import torch

from training.sparse import Adjacency, RelationStack, csr_of, sorted_entries


def _reference(row: torch.Tensor, col: torch.Tensor, val: torch.Tensor, shape: tuple[int, int]):
    coo = torch.sparse_coo_tensor(torch.stack([row, col]), val, shape).coalesce()
    return coo.to_sparse_csr(), coo.t().coalesce().to_sparse_csr()


def _same_csr(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape
    assert torch.equal(a.crow_indices(), b.crow_indices())
    assert torch.equal(a.col_indices(), b.col_indices())
    torch.testing.assert_close(a.values(), b.values(), rtol=1e-6, atol=1e-6)  # summation order


def test_sorted_entries_sum_repeated_positions_like_coalesce() -> None:
    g = torch.Generator().manual_seed(0)
    row = torch.randint(0, 40, (3000,), generator=g)
    col = torch.randint(0, 30, (3000,), generator=g)  # many repeated (row, col) positions
    val = torch.rand(3000, generator=g)
    r, c, v = sorted_entries(row, col, val, 30)
    assert len(r) < 3000  # repeats were merged
    expected, expected_t = _reference(row, col, val, (40, 30))
    _same_csr(csr_of(r, c, v, (40, 30)), expected)
    adj = Adjacency.from_entries(row, col, val, (40, 30))
    _same_csr(adj.matrix, expected)
    _same_csr(adj.matrix_t, expected_t)


def test_empty_rows_and_no_entries() -> None:
    none = torch.zeros(0, dtype=torch.long)
    adj = Adjacency.from_entries(none, none, torch.zeros(0), (5, 3))
    assert adj.matrix.shape == (5, 3) and adj.matrix_t.shape == (3, 5)
    assert torch.equal(adj.matrix.to_dense(), torch.zeros(5, 3))
    row = torch.tensor([4, 0, 4])
    col = torch.tensor([2, 1, 2])
    adj = Adjacency.from_entries(row, col, torch.tensor([1.0, 2.0, 3.0]), (5, 3))
    dense = torch.zeros(5, 3)
    dense[4, 2], dense[0, 1] = 4.0, 2.0
    assert torch.equal(adj.matrix.to_dense(), dense)
    assert torch.equal(adj.matrix_t.to_dense(), dense.t())


def _old_build(edges, num_nodes, node_types, head_types):
    """The stack as it was built before (COO tensors coalesced), for comparison."""
    node_types = head_types + [t for t in node_types if t not in head_types]
    offsets, total = {}, 0
    for t in node_types:
        offsets[t], total = total, total + num_nodes[t]
    relations: dict[str, int] = {}
    for (_, _, dst), ei in edges.items():
        relations[dst] = relations.get(dst, 0) + int(ei.numel() > 0)
    rows, cols, vals = [], [], []
    for (src, _, dst), ei in edges.items():
        deg = torch.zeros(num_nodes[dst]).index_add_(0, ei[1], torch.ones(ei.shape[1]))
        rows.append(ei[1] + offsets[dst])
        cols.append(ei[0] + offsets[src])
        vals.append(1.0 / (deg[ei[1]] * relations[dst]))
    row, col, val = torch.cat(rows), torch.cat(cols), torch.cat(vals)
    full = _reference(row, col, val, (total, total))
    n_head = sum(num_nodes[t] for t in head_types)
    keep = row < n_head
    head = _reference(row[keep], col[keep], val[keep], (n_head, total))
    return full, head


def test_relation_stack_equals_the_coalesced_build() -> None:
    g = torch.Generator().manual_seed(1)
    num = {"User": 50, "Item": 20, "Term": 7}

    def rel(n_src: int, n_dst: int, m: int) -> torch.Tensor:
        return torch.stack(
            [torch.randint(0, n_src, (m,), generator=g), torch.randint(0, n_dst, (m,), generator=g)]
        )

    clicked, viewed = rel(50, 20, 300), rel(50, 20, 400)  # overlapping (user, item) pairs
    has_term = rel(20, 7, 60)
    edges = {
        ("User", "CLICKED", "Item"): clicked,
        ("User", "VIEWED", "Item"): viewed,
        ("Item", "rev_CLICKED", "User"): clicked.flip(0),
        ("Item", "rev_VIEWED", "User"): viewed.flip(0),
        ("Item", "HAS_TERM", "Term"): has_term,
        ("Term", "rev_HAS_TERM", "Item"): has_term.flip(0),
    }
    stack = RelationStack.build(edges, num, ["Term", "User", "Item"], head_types=["User", "Item"])
    (full, full_t), (head, head_t) = _old_build(
        edges, num, ["Term", "User", "Item"], ["User", "Item"]
    )
    assert stack.node_types == ["User", "Item", "Term"]
    _same_csr(stack.adjacency.matrix, full)
    _same_csr(stack.adjacency.matrix_t, full_t)
    assert stack.head is not None
    _same_csr(stack.head.matrix, head)
    _same_csr(stack.head.matrix_t, head_t)
