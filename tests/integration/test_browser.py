"""Neo4j Browser in a real headless Chromium (Debian's, never a downloaded one): log in to the
managed server, run a segment query, see the graph drawn with the project's style.

The screenshot is kept under ``$DPGCN_HOME/artifacts/browser-segments.png``; with
``DPGCN_UPDATE_DOCS_IMAGES=1`` it is also copied to ``docs/images/browser-segments.png``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from neo4j import Driver

from dpgcn import services
from dpgcn.settings import get_settings
from workers.segment_tasks import segment_version

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
SEGMENT_COLOUR = "rgb(255, 216, 110)"  # node.Segment in graphstore/assets/browser/style.grass
QUERY = (
    "MATCH (m:Model {active: true})\n"
    "MATCH p = (s:Segment {model_version: m.version})-[:AFFINITY]->(:Category)\n"
    "RETURN p"
)


@pytest.fixture(scope="module")
def segmented(driver: Driver, trained_model: str) -> str:
    segment_version(driver, trained_model)
    return trained_model


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser-deps` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(120_000)
        yield context.new_page()
        context.close()
        browser.close()


def test_browser_renders_segments(page: Any, segmented: str, driver: Driver) -> None:
    conn = services.neo4j_connection(get_settings())
    assert conn.browser_url, "the Browser test needs the managed server"
    expected = driver.execute_query(
        "MATCH (s:Segment {model_version: $v})-[:AFFINITY]->(c:Category) "
        "RETURN count(DISTINCT s) + count(DISTINCT c) AS n",
        {"v": segmented},
    ).records[0]["n"]
    assert expected >= 2

    page.goto(f"{conn.browser_url}?dbms={conn.uri}", wait_until="domcontentloaded")
    page.get_by_test_id("username").fill(conn.user)
    page.get_by_test_id("password").fill(conn.password)
    page.get_by_test_id("connect").click()
    page.get_by_text("You are connected as user").first.wait_for()

    editor = page.get_by_test_id("activeEditor")
    editor.click()
    page.keyboard.insert_text(QUERY)
    page.get_by_test_id("editor-Run").click()

    frame = page.get_by_test_id("frame").filter(has_text="model_version: m.version").first
    nodes = frame.locator("svg g.node")
    nodes.first.wait_for(state="visible")
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=frame] svg g.node').length >= n",
        arg=expected,
    )
    assert nodes.count() >= expected
    page.wait_for_timeout(1500)  # let the force layout settle for the picture
    fills = [
        nodes.nth(k).locator("circle.b-outline").get_attribute("fill") for k in range(nodes.count())
    ]
    assert SEGMENT_COLOUR in fills, f"segment style not applied: {set(fills)}"

    shot = get_settings().artifacts_dir / "browser-segments.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    frame.screenshot(path=str(shot))
    page.screenshot(path=str(shot.with_name("browser-page.png")))
    assert shot.stat().st_size > 20_000
    if os.environ.get("DPGCN_UPDATE_DOCS_IMAGES") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "images" / "browser-segments.png")


def test_browser_opens_the_segment_guide(page: Any, segmented: str) -> None:
    """The guide served by `dpgcn segments browser` loads (allowlisted host, CORS)."""
    from dpgcn.cli_segments import serve_assets

    server = serve_assets(0)
    try:
        port = server.server_address[1]
        page.get_by_test_id("activeEditor").click()
        page.keyboard.insert_text(f":guide http://127.0.0.1:{port}/segments-guide.html")
        page.get_by_test_id("editor-Run").click()
        page.get_by_text("Market segments of the active model").first.wait_for()
        page.wait_for_timeout(1000)
        shot = get_settings().artifacts_dir / "browser-guide.png"
        page.screenshot(path=str(shot))
        if os.environ.get("DPGCN_UPDATE_DOCS_IMAGES") == "1":
            shutil.copyfile(shot, ROOT / "docs" / "images" / "browser-guide.png")
    finally:
        server.shutdown()
