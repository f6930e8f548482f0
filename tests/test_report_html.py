"""report.html in a real headless browser (Chromium from the system packages, driven by
Playwright): it renders, logs no console error, loads every image and fetches nothing."""

from __future__ import annotations

import shutil

import pytest

from sim.metrics import build_result
from sim.metrics.example import example_record
from sim.report import write_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _chromium() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("NOTICE: no Chromium on this system (apt-get install chromium): the HTML report "
                "was not checked in a browser")


def test_report_html_renders_in_headless_chromium(tmp_path):
    """Every image loads, the console stays clean, no request leaves the page, and the
    headline cards, the reading line, warnings and the decision log with numbers show."""
    browser_path = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    res = build_result(
        example_record(), slo_metric="ttft", slo_threshold_s=2.0, warmup_s=300.0,
        scenario_dict={"name": "demo <b>run</b>", "deployment": {"model": "m"}},
    )  # fmt: skip
    write_report(res, tmp_path)
    page_url = (tmp_path / "report.html").as_uri()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            problems: list[str] = []
            fetched: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("request", lambda r: fetched.append(r.url))
            page.goto(page_url, wait_until="load")
            images = page.evaluate(
                "[...document.images].map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])"
            )
            text = page.inner_text("body")
            title = page.title()
        finally:
            browser.close()
    assert problems == []
    assert fetched == [page_url]  # the page alone: plots are embedded, nothing from the network
    assert len(images) == 3
    for alt, complete, width, height in images:
        assert complete and width > 600 and height > 300, alt
    assert title == "Run report: demo <b>run</b>"  # the name shown as text, never as markup
    for needle in ("cost per hour", "SLO attainment", "What this means:", "Scaling actions",
                   "requests failed", "Warnings"):
        assert needle in text, needle
    assert "#" not in text.split("Autoscaler decisions")[1].split("Cost")[0]
