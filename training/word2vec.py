"""Term vectors from the export's own text: skip-gram with negative sampling (word2vec,
Mikolov et al. 2013) over term co-occurrence.

The "sentences" are the term sets of each query and each item (``Query/Item -HAS_TERM->
Term``); every ordered pair of terms in a sentence is a (centre, context) example. Nothing is
downloaded. Used to initialise DP-GCN's Term table when
``TrainConfig.model.dpgcn.word2vec_terms`` is set (the paper initialises textual components
from Word2Vec).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from training.data import HAS_TERM, ITEM, QUERY, TERM
from training.dataset import GraphData

logger = logging.getLogger(__name__)


def cooccurrence_pairs(data: GraphData, max_sentence: int = 20) -> np.ndarray:
    """``[2, P]`` (centre, context) term pairs from each query's and item's term set."""
    pairs = []
    for owner in (QUERY, ITEM):
        e = data.split.graph.edges.get((owner, HAS_TERM, TERM))
        if e is None or e.num_edges == 0:
            continue
        order = np.argsort(e.index[0], kind="stable")
        owners, terms = e.index[0][order], e.index[1][order]
        bounds = np.flatnonzero(np.diff(owners)) + 1
        for sentence in np.split(terms, bounds):
            s = np.unique(sentence)[:max_sentence]
            if len(s) < 2:
                continue
            a, b = np.meshgrid(s, s, indexing="ij")
            keep = a != b
            pairs.append(np.stack([a[keep], b[keep]]))
    return np.concatenate(pairs, axis=1) if pairs else np.zeros((2, 0), np.int64)


def term_vectors(
    data: GraphData,
    dim: int,
    seed: int,
    epochs: int = 5,
    negatives: int = 5,
    lr: float = 0.05,
) -> dict[str, Tensor] | None:
    """Skip-gram vectors ``{"Term": [n_terms, dim]}`` scaled to the embedding init's size, or
    ``None`` when the export has no term co-occurrences."""
    n_terms = data.num_nodes.get(TERM, 0)
    pairs = cooccurrence_pairs(data)
    if n_terms == 0 or pairs.shape[1] == 0:
        logger.info("no term co-occurrences: Term vectors stay randomly initialised")
        return None
    gen = torch.Generator().manual_seed(seed)
    centre = torch.nn.Parameter(torch.randn(n_terms, dim, generator=gen) * 0.1)
    context = torch.nn.Parameter(torch.zeros(n_terms, dim))
    opt = torch.optim.Adam([centre, context], lr=lr)
    counts = np.bincount(pairs[1], minlength=n_terms).astype(np.float64) ** 0.75
    noise = torch.as_tensor(counts / counts.sum(), dtype=torch.float32)
    p = torch.as_tensor(pairs)
    for _ in range(epochs):
        perm = torch.randperm(p.shape[1], generator=gen)
        for start in range(0, p.shape[1], 4096):
            idx = perm[start : start + 4096]
            c, o = p[0, idx], p[1, idx]
            neg = torch.multinomial(noise, len(idx) * negatives, replacement=True, generator=gen)
            pos = (centre[c] * context[o]).sum(-1)
            negs = (centre[c].repeat_interleave(negatives, 0) * context[neg]).sum(-1)
            loss = -(F.logsigmoid(pos).mean() + F.logsigmoid(-negs).mean())
            opt.zero_grad()
            loss.backward()
            opt.step()
    vecs = centre.detach()
    vecs = vecs / vecs.norm(dim=1, keepdim=True).clamp(min=1e-12) * 0.1 * dim**0.5
    logger.info("trained %d term vectors on %d co-occurrence pairs", n_terms, pairs.shape[1])
    return {TERM: vecs.to(data.device)}
