"""The report says, per seed, whether validation switched the DDPG policy off (α = 0)."""

from __future__ import annotations

from training.report_markdown import _policy_section


def test_policy_off_on_every_seed_is_said() -> None:
    text = "\n".join(_policy_section({"dpgcn": [0.0, 0.0, 0.0]}))
    assert "| DP-GCN | 0, 0, 0 | **off** on every seed" in text


def test_policy_off_on_some_seeds_counts_them() -> None:
    text = "\n".join(_policy_section({"dpgcn": [0.25, 0.0, 0.5]}))
    assert "| DP-GCN | 0.25, 0, 0.5 | off on 1 of 3 seeds" in text


def test_policy_on_everywhere_and_no_policy() -> None:
    assert "on for every seed" in "\n".join(_policy_section({"dpgcn": [0.1, 0.5]}))
    assert _policy_section({}) == []
