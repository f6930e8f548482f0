"""Screenshot the top of a run's report.html for the README (docs/report.png).

    sim run scenarios/quickstart.yaml && python scripts/screenshot_report.py results/quickstart

Needs Playwright (the dev extra) and a Chromium on PATH (``apt-get install chromium``); the
PNG is quantized to 64 colours to stay small in the repository.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright


def main(run_dir: str, out: str = "docs/report.png") -> None:
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        raise SystemExit("needs chromium on PATH (apt-get install chromium)")
    page_url = (Path(run_dir) / "report.html").resolve().as_uri()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 1250})
        page.goto(page_url, wait_until="load")
        page.screenshot(path=out)
        browser.close()
    img = Image.open(out).convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    img.save(out, optimize=True)
    print(f"wrote {out} ({Path(out).stat().st_size:,} bytes)")


if __name__ == "__main__":
    main(*sys.argv[1:])
