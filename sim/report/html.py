"""``report.html``: the run report as one self-contained page (plots embedded, no network).

The page is ``report.md`` rendered (markdown-it-py, raw HTML off, so nothing in a scenario
name or reason can inject markup) with headline figure cards under the title and every plot
embedded as a ``data:`` PNG; a Content-Security-Policy forbids any other source.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;
  max-width:1100px;margin:2rem auto;padding:0 1.2rem}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{margin-top:2rem;border-bottom:1px solid #e3e6ec}
table{border-collapse:collapse;margin:.6rem 0;font-size:13px;display:block;overflow-x:auto}
th,td{border:1px solid #e3e6ec;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#f5f7fa} td:not(:first-child){font-variant-numeric:tabular-nums}
code{background:#f2f4f7;padding:0 .25rem;border-radius:3px;font-size:12.5px}
img{max-width:100%;height:auto;display:block;margin:1rem 0}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:.7rem;
  margin:1.2rem 0}
.card{border:1px solid #e3e6ec;border-radius:8px;padding:.6rem .8rem;background:#fafbfc}
.card .v{font-size:1.35rem;font-weight:600} .card .k{font-size:12px;color:#5b6475}
.card.bad{border-color:#e5a0a0;background:#fff5f5} .card.good{border-color:#9fd3ae}
"""
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _card(label: str, value: str, tone: str = "") -> str:
    return (f'<div class="card {tone}"><div class="v">{html.escape(value)}</div>'
            f'<div class="k">{html.escape(label)}</div></div>')


def _cards(s: dict[str, Any], slo_target: float) -> str:
    c, e2e, ttft, slo, r, w = (s["cost"], s["latency_e2e_s"], s["ttft_s"], s["slo"],
                               s["requests"], s["workers"])

    def sec(v: Any) -> str:
        return "–" if v is None else f"{v:.3g} s"

    att = slo.get("attainment")
    tone = "" if att is None else ("good" if att >= slo_target else "bad")
    failed = r.get("failed") or 0
    cards = [
        _card("cost per hour", "–" if c.get("per_hour_usd") is None else f"${c['per_hour_usd']:,.2f}"),
        _card(f"SLO attainment ({slo['metric'].upper()} ≤ {slo['threshold_s']:g} s)",
              "–" if att is None else f"{att:.1%}", tone),
        _card("E2E latency p95", sec(e2e.get("p95"))),
        _card("TTFT p95", sec(ttft.get("p95"))),
        _card(f"requests completed of {r.get('arrived') or 0:,}", f"{r.get('completed') or 0:,}"),
        _card("requests failed", f"{failed:,}", "bad" if failed else ""),
        _card("workers max / mean", f"{w.get('max')} / "
              + ("–" if w.get("mean") is None else f"{w['mean']:.2f}")),
    ]  # fmt: skip
    return '<div class="cards">' + "".join(cards) + "</div>"


def render_html(
    summary: dict[str, Any] | None, markdown_text: str, images: dict[str, bytes], *, slo_target: float
) -> str:
    """The page for ``markdown_text`` with ``images`` (file name → PNG bytes) embedded; with a
    run ``summary``, headline figure cards under the title."""
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown_text)

    def embed(m: re.Match[str]) -> str:
        name = html.unescape(m.group(1))
        if name not in images:
            return m.group(0)
        data = base64.b64encode(images[name]).decode("ascii")
        return f'src="data:image/png;base64,{data}"'

    body = re.sub(r'src="([^"]+)"', embed, body)
    # Figure cards right below the title and its one-line description.
    head, sep, rest = body.partition("</h1>")
    if sep and summary is not None:
        first, psep, tail = rest.partition("</p>")
        body = head + sep + first + psep + _cards(summary, slo_target) + tail
    title = re.search(r"<h1>(.*?)</h1>", body)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title.group(1) if title else 'Run report'}</title><style>{_CSS}</style>"
        f"</head><body>\n{body}</body></html>\n"
    )


def write_html(summary: dict[str, Any] | None, markdown_text: str, out_dir: Path, *,
               slo_target: float) -> Path:
    """Write ``report.html`` beside ``report.md``, embedding the PNGs the markdown names."""
    names = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", markdown_text)
    images = {n: (out_dir / n).read_bytes() for n in names if (out_dir / n).is_file()}
    path = out_dir / "report.html"
    path.write_text(render_html(summary, markdown_text, images, slo_target=slo_target),
                    encoding="utf-8")
    return path
