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


def test_warnings_that_matter_come_first(tmp_path):
    """Requests rejected as too long and scale-ups on another GPU shape head the report, and
    the reading line says what to try; decision reasons keep their numbers."""
    from sim.engine.record import FAIL_TOO_LARGE, FAILED, WorkerRecord

    rec = example_record(n_requests=400)
    rec.requests.status[:7] = FAILED
    rec.requests.fail_reason[:7] = FAIL_TOO_LARGE
    rec.workers.append(WorkerRecord(99, "H100", 2, "gcp", "us-central1", "us-central1-a", spot=False,
                                    on_prem=False, initial=False, price_per_hour_usd=9.0,
                                    requested_s=100.0, provisioned_s=200.0, ready_s=300.0,
                                    terminated_s=900.0, end_reason="scale_down"))
    res = build_result(rec, slo_metric="ttft", slo_threshold_s=2.0)
    text = write_report(res, tmp_path).read_text()
    head = text.split("## Headline")[0]
    assert "7 requests were rejected as too long" in head
    assert "ran on a different GPU shape than the initial workers (2× H100: 1" in head
    assert "What this means:" in head
    decisions = text.split("## Autoscaler decisions")[1].split("## Cost")[0]
    assert "#" not in decisions and "S" in decisions
    html = (tmp_path / "report.html").read_text()
    assert html.index("rejected as too long") < html.index("<h2>Headline</h2>")
