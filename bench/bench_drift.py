"""Benchmark: does the online DDPG loop adapt recommendations to preference drift?

Setup (synthetic shop, ``graphstore.sources.synthetic`` with ``drift_fraction``):

* **Embeddings** are a *perfect pre-drift model*: user vectors are the generator's pre-drift
  user latents, item vectors its item latents (plus a popularity coordinate), so scores equal
  the generator's pre-drift preferences. This isolates the question the paper asks of the
  decision layer — can it follow changed behaviour without retraining the embeddings?
* **Policy**: a DDPG policy (``training.policy.DDPGPolicy``) warmed up on pre-drift feedback
  with the online learner; that warmed policy is the starting point of both arms.
* **Replay**: then the drifting users switch to their post-drift preferences. Each round, every
  user is shown a slate of ``K`` items scored with ``u + α·scale·μ(s)`` (serving's
  ``PolicyAdjuster``) and responds from the generator's post-drift preferences: a shown item is
  clicked with probability ``σ((score − q_u)/τ)`` (``q_u`` the user's 90th-percentile score),
  purchased after a click with the generator's purchase probability. Rewards: click 1,
  purchase 5, view 0.

Arms, in the same run and the same simulated users (common random numbers per round):

* ``frozen``  — the warmed policy, never updated (serving still sees users' new clicks in the
  state's recent-item history);
* ``online``  — after every round, the round's feedback goes through the same code path as the
  Celery task: stream entries → ``workers.online.learn_from_entries`` →
  ``OnlineLearner.policy_bytes`` → ``training.inference.load_policy_adjuster_bytes``;
* ``no policy`` — α = 0 (the embeddings alone), for reference;
* ``retrained`` — no policy, user vectors from the *post-drift* latents: what a full retraining
  on post-drift data could reach at best (an upper bound, not a cost-free option).

Prints cumulative reward and CTR per arm for drifting and stable users, the online/frozen
ratio, and writes ``docs/images/drift.png``.

    .venv/bin/python bench/bench_drift.py                       # defaults as in the docs
    .venv/bin/python bench/bench_drift.py --rounds 40 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphstore.sources import synthetic  # noqa: E402
from training.config import PolicyConfig  # noqa: E402
from training.inference import PolicyAdjuster, load_policy_adjuster_bytes  # noqa: E402
from training.online import OnlineLearner  # noqa: E402
from training.policy import DDPGPolicy  # noqa: E402
from workers.online import events_from_entries, learn_from_entries  # noqa: E402

ARMS = ("frozen", "online", "no policy", "retrained")


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Shop:
    """The simulated users: post-drift preferences, slates, responses."""

    def __init__(self, spec: synthetic.SyntheticSpec) -> None:
        _, truth = synthetic.generate(spec)
        self.truth = truth
        self.spec = spec
        d = spec.latent_dim
        # pre-drift latents: recompute from the planted segments (the generator's noise is the
        # same before and after, so latent_before = latent_after - centre_after + centre_before)
        stable = ~truth.drifting
        centres = np.stack(
            [
                truth.user_latent[(truth.segment == s) & stable].mean(0)
                if ((truth.segment == s) & stable).any()
                else np.zeros(d)
                for s in range(spec.n_segments)
            ]
        )
        noise = truth.user_latent - centres[truth.segment]
        self.latent_before = centres[truth.segment_before] + noise
        self.latent_after = truth.user_latent
        pop = truth.log_popularity[:, None]
        self.item_vecs = np.hstack([truth.item_latent, pop]).astype(np.float32)
        beta = np.full((spec.users, 1), truth.beta)
        self.user_vecs = np.hstack([self.latent_before, beta]).astype(np.float32)
        self.user_vecs_after = np.hstack([self.latent_after, beta]).astype(np.float32)
        self.drifting = truth.drifting
        self.user_ids = np.array(truth.user_ids)
        self.item_ids = np.array(truth.item_ids)

    def preferences(self, after: bool) -> np.ndarray:
        latent = self.latent_after if after else self.latent_before
        return latent @ self.truth.item_latent.T + self.truth.beta * self.truth.log_popularity

    def respond(
        self, prefs: np.ndarray, slates: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Clicks and purchases ``[U, K]`` for the shown slates."""
        q = np.quantile(prefs, 0.9, axis=1, keepdims=True)
        s = np.take_along_axis(prefs, slates, axis=1)
        u_click = rng.random(slates.shape)
        u_buy = rng.random(slates.shape)
        clicks = u_click < sigmoid((s - q) / self.spec.tau)
        buys = clicks & (u_buy < self.spec.p_purchase * sigmoid(s))
        return clicks, buys


def slates_for(
    user_vecs: np.ndarray,
    item_vecs: np.ndarray,
    adjuster: PolicyAdjuster | None,
    history: np.ndarray,
    k: int,
) -> np.ndarray:
    u = user_vecs if adjuster is None else adjuster.adjust(user_vecs, item_vecs, history)
    scores = u @ item_vecs.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1)
    return np.take_along_axis(top, order, 1)


def entries_for(
    shop: Shop,
    slates: np.ndarray,
    clicks: np.ndarray,
    buys: np.ndarray,
    round_no: int,
    seq: list[int],
) -> list[tuple[str, dict[str, str]]]:
    """The round's feedback as feedback-stream entries (``dpgcn.streams`` fields)."""
    out = []
    ts0 = 1_800_000_000 + round_no * 3600
    for u, k in zip(*np.nonzero(np.ones_like(slates, bool)), strict=True):
        kind = "purchase" if buys[u, k] else "click" if clicks[u, k] else "view"
        seq[0] += 1
        out.append(
            (
                f"{ts0 * 1000 + seq[0] // 1000}-{seq[0] % 1000}",
                {
                    "event_id": f"r{round_no}-{seq[0]}",
                    "user_id": str(shop.user_ids[u]),
                    "type": kind,
                    "item_id": str(shop.item_ids[slates[u, k]]),
                    "query": "",
                    "ts": str(ts0 + float(k)),
                },
            )
        )
    return out


def new_learner(shop: Shop, policy: DDPGPolicy) -> OnlineLearner:
    return OnlineLearner(policy, shop.user_ids, shop.user_vecs, shop.item_ids, shop.item_vecs)


def copy_learner(shop: Shop, learner: OnlineLearner) -> OnlineLearner:
    adjuster_blob = learner.policy_bytes()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.pt"
        path.write_bytes(adjuster_blob)
        policy = DDPGPolicy.load(path, seed=1)
    out = new_learner(shop, policy)
    out.user_history = learner.user_history.copy()
    return out


def run(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    spec = synthetic.SyntheticSpec(
        users=args.users,
        items=args.items,
        events_per_user=2,
        drift_fraction=args.drift,
        latent_dim=args.dim,
        seed=seed,
    )
    shop = Shop(spec)
    d = shop.user_vecs.shape[1]
    cfg = PolicyConfig(
        actor_hidden=(64,),
        critic_hidden=(64,),
        batch_size=256,
        state_history=5,
        updates_per_step=4,
        buffer_size=args.buffer,
        actor_lr=args.actor_lr,
        critic_lr=args.critic_lr,
    )
    scale = float(np.linalg.norm(shop.user_vecs, axis=1).mean() / np.sqrt(d))
    policy = DDPGPolicy(2 * d, d, cfg, seed=seed, alpha=args.alpha, scale=scale)
    learner = new_learner(shop, policy)
    seq = [0]
    rng = np.random.default_rng(seed + 100)

    # Warm-up on pre-drift behaviour (what the trained policy would have seen).
    before = shop.preferences(after=False)
    for r in range(args.warmup):
        adjuster = load_policy_adjuster_bytes(learner.policy_bytes())
        sl = slates_for(shop.user_vecs, shop.item_vecs, adjuster, learner.user_history, args.k)
        clicks, buys = shop.respond(before, sl, rng)
        learn_from_entries(learner, entries_for(shop, sl, clicks, buys, r, seq), args.passes)

    online = learner
    frozen = copy_learner(shop, learner)
    frozen.meta = dict(learner.meta)
    frozen_adjuster = load_policy_adjuster_bytes(frozen.policy_bytes())
    none_history = learner.user_history.copy()
    after = shop.preferences(after=True)
    arms = ARMS
    series: dict[str, dict[str, list[float]]] = {
        a: {"reward_drift": [], "reward_stable": [], "ctr_drift": [], "ctr_stable": []}
        for a in arms
    }
    update_s = []
    for r in range(args.rounds):
        round_seed = seed * 10_000 + r
        online_adjuster = load_policy_adjuster_bytes(online.policy_bytes())
        for arm in arms:
            if arm == "frozen":
                sl = slates_for(
                    shop.user_vecs, shop.item_vecs, frozen_adjuster, frozen.user_history, args.k
                )
            elif arm == "online":
                sl = slates_for(
                    shop.user_vecs, shop.item_vecs, online_adjuster, online.user_history, args.k
                )
            elif arm == "no policy":
                sl = slates_for(shop.user_vecs, shop.item_vecs, None, none_history, args.k)
            else:
                sl = slates_for(shop.user_vecs_after, shop.item_vecs, None, none_history, args.k)
            clicks, buys = shop.respond(after, sl, np.random.default_rng(round_seed))
            reward = clicks.sum(1) + 4.0 * buys.sum(1)  # click 1, purchase 5 (= 1 + 4)
            for group, mask in (("drift", shop.drifting), ("stable", ~shop.drifting)):
                series[arm][f"reward_{group}"].append(float(reward[mask].mean()))
                series[arm][f"ctr_{group}"].append(float(clicks[mask].mean()))
            entries = entries_for(shop, sl, clicks, buys, args.warmup + r, seq)
            if arm == "online":
                t = time.perf_counter()
                learn_from_entries(online, entries, args.passes)
                update_s.append(time.perf_counter() - t)
            elif arm == "frozen":
                frozen.transitions(events_from_entries(entries))  # history only
    return {
        "series": series,
        "update_s": update_s,
        "drifting": int(shop.drifting.sum()),
        "users": args.users,
        "buffer": len(online.policy.buffer),
    }


def summarise(results: list[dict[str, Any]], rounds: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for arm in ARMS:
        row: dict[str, float] = {}
        for key in ("reward_drift", "reward_stable", "ctr_drift", "ctr_stable"):
            per_seed = [
                np.sum(res["series"][arm][key])
                if key.startswith("reward")
                else np.mean(res["series"][arm][key])
                for res in results
            ]
            row[key] = float(np.mean(per_seed))
            row[key + "_sd"] = float(np.std(per_seed))
            last = [np.mean(res["series"][arm][key][-max(1, rounds // 4) :]) for res in results]
            row[key + "_last"] = float(np.mean(last))
        out[arm] = row
    return out


def plot(results: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colours = {
        "frozen": "tab:blue",
        "online": "tab:orange",
        "no policy": "tab:gray",
        "retrained": "tab:green",
    }
    for arm, colour in colours.items():
        cum = np.mean([np.cumsum(r["series"][arm]["reward_drift"]) for r in results], 0)
        ctr_d = np.mean([r["series"][arm]["ctr_drift"] for r in results], 0)
        ctr_s = np.mean([r["series"][arm]["ctr_stable"] for r in results], 0)
        x = np.arange(1, len(cum) + 1)
        axes[0].plot(x, cum, label=arm, color=colour)
        axes[1].plot(x, ctr_d, label=arm, color=colour)
        axes[2].plot(x, ctr_s, label=arm, color=colour)
    axes[0].set_title("drifting users: cumulative reward per user")
    axes[1].set_title("drifting users: CTR per round")
    axes[2].set_title("stable users: CTR per round")
    for ax in axes:
        ax.set_xlabel("round after the drift")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--drift", type=float, default=0.5)
    parser.add_argument("--alpha", type=float, default=0.3)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--passes", type=int, default=16)
    parser.add_argument("--actor-lr", type=float, default=1e-3)
    parser.add_argument("--critic-lr", type=float, default=1e-3)
    parser.add_argument("--buffer", type=int, default=50_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "images" / "drift.png")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    results = [run(args, s) for s in args.seeds]
    summary = summarise(results, args.rounds)
    print(
        f"users={args.users} items={args.items} drift={args.drift} alpha={args.alpha} "
        f"K={args.k} warmup={args.warmup} rounds={args.rounds} passes={args.passes} "
        f"actor_lr={args.actor_lr} critic_lr={args.critic_lr} buffer={args.buffer} "
        f"seeds={args.seeds} drifting users={[r['drifting'] for r in results]}"
    )
    header = (
        f"{'arm':10} {'cum reward drift':>18} {'cum reward stable':>18} "
        f"{'CTR drift':>10} {'CTR stable':>10} {'CTR drift last':>14} {'CTR stable last':>15}"
    )
    print(header)
    for arm, row in summary.items():
        print(
            f"{arm:10} {row['reward_drift']:9.2f} ± {row['reward_drift_sd']:5.2f} "
            f"{row['reward_stable']:9.2f} ± {row['reward_stable_sd']:5.2f} "
            f"{row['ctr_drift']:10.4f} {row['ctr_stable']:10.4f} "
            f"{row['ctr_drift_last']:14.4f} {row['ctr_stable_last']:15.4f}"
        )
    f, o = summary["frozen"], summary["online"]
    print(
        f"ratio online/frozen: cum reward drifting {o['reward_drift'] / f['reward_drift']:.3f}, "
        f"stable {o['reward_stable'] / f['reward_stable']:.3f}; "
        f"CTR drifting last quarter {o['ctr_drift_last'] / f['ctr_drift_last']:.3f}"
    )
    per_seed = [
        np.sum(r["series"]["online"]["reward_drift"])
        / np.sum(r["series"]["frozen"]["reward_drift"])
        for r in results
    ]
    per_seed_nop = [
        np.sum(r["series"]["online"]["reward_drift"])
        / np.sum(r["series"]["no policy"]["reward_drift"])
        for r in results
    ]
    print(
        "per seed, cum reward drifting: online/frozen "
        + ", ".join(f"{x:.3f}" for x in per_seed)
        + "; online/no policy "
        + ", ".join(f"{x:.3f}" for x in per_seed_nop)
    )
    upd = [s for r in results for s in r["update_s"]]
    print(
        f"online update per round: median {np.median(upd) * 1000:.0f} ms "
        f"({args.users * args.k} events), buffer {results[0]['buffer']} transitions"
    )
    plot(
        results,
        args.plot,
        f"Preference drift: {args.drift:.0%} of users, alpha={args.alpha}, {len(args.seeds)} seeds",
    )
    print(f"plot: {args.plot}  ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
