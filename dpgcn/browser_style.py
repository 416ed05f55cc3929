"""The Neo4j Browser style the managed server applies on connect: ``assets/browser/style.grass``
read into the JSON shape of Browser's ``:style`` command (a ``browser.post_connect_cmd``)."""

from __future__ import annotations

import json
import re
from importlib import resources


def parse_grass(text: str) -> dict[str, dict[str, str]]:
    """A GraSS style sheet as ``{selector: {property: value}}`` (quotes dropped), the shape
    Neo4j Browser's ``:style`` command also accepts as JSON."""
    rules: dict[str, dict[str, str]] = {}
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}", text):
        props: dict[str, str] = {}
        for decl in body.split(";"):
            key, sep, value = decl.partition(":")
            if sep and key.strip():
                props[key.strip()] = value.strip().strip("\"'")
        rules[selector.strip()] = props
    return rules


def browser_style_command() -> str:
    """The Browser command that applies ``assets/browser/style.grass``: ``style {json}``.

    As JSON (no ``;``, which separates post-connect commands) with ``#rrggbb`` colours written
    ``rgb(r, g, b)`` so nothing in the value reads as a comment."""
    text = resources.files("graphstore").joinpath("assets/browser/style.grass").read_text()

    def rgb(value: str) -> str:
        m = re.fullmatch(r"#([0-9a-fA-F]{6})", value)
        if not m:
            return value
        r, g, b = (int(m.group(1)[i : i + 2], 16) for i in (0, 2, 4))
        return f"rgb({r}, {g}, {b})"

    rules = {sel: {k: rgb(v) for k, v in props.items()} for sel, props in parse_grass(text).items()}
    return "style " + json.dumps(rules, separators=(",", ":"))
