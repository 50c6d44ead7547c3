"""coverage.html: one self-contained page (inline CSS and SVG, no script, no external URL).

It is meant to be mailed or opened offline, so nothing is fetched: a Content-Security-Policy forbids it.
Every value is HTML-escaped. Big tables are capped (`HTML_ROW_CAP`) with a note pointing at the CSV/XLSX.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

from ..models import Status
from .rules import iso_utc, status_colours
from .view import LIGHTHOUSE_CUSTOMERS, Figure, ReportView, Table

#: Rows shown per table; the CSV and XLSX hold every row.
HTML_ROW_CAP = 2_000

_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1f2328; }
header { background: #0f3d6e; color: #fff; padding: 16px 24px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; opacity: .85; }
header p.incomplete { opacity: 1; margin-top: 6px; background: #9C0006; padding: 4px 8px; display: inline-block; }
nav { padding: 8px 24px; background: #f3f5f8; border-bottom: 1px solid #d0d7de; }
nav a { margin-right: 14px; color: #0f3d6e; }
main { padding: 8px 24px 40px; }
section { margin: 24px 0; }
h2 { font-size: 18px; border-bottom: 2px solid #d0d7de; padding-bottom: 4px; }
.kpis { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.kpi { border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 16px; min-width: 140px; }
.kpi b { display: block; font-size: 24px; }
dl.figures { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
dl.figures dt { font-weight: 600; }
dl.figures dd { margin: 0; word-break: break-all; }
figure { margin: 16px 0; }
figcaption { font-weight: 600; margin-bottom: 4px; }
.note { color: #57606a; font-style: italic; }
.scroll { overflow-x: auto; max-width: 100%; }
table.data { border-collapse: collapse; font-size: 13px; }
table.data th { position: sticky; top: 0; background: #dde7f3; text-align: left; }
table.data th, table.data td { border: 1px solid #d0d7de; padding: 3px 6px; vertical-align: top; }
table.data td { white-space: pre-wrap; }
table.data tbody tr:nth-child(even) td { background-color: #f8fafc; }
td.yes { background: #C6EFCE !important; color: #006100; }
td.no { background: #FFC7CE !important; color: #9C0006; }
td.num { text-align: right; }
td.id { white-space: nowrap; font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
"""


def _status_css() -> str:
    rules = []
    for s in Status:
        fill, font = status_colours(s.value)
        rules.append(f"td.s-{s.value} {{ background: {fill} !important; color: {font}; }}")
    return "\n".join(rules)


def _status_chart(counts: Sequence[tuple[str, int]]) -> str:
    """A horizontal bar chart of identities per status, as inline SVG."""
    if not counts:
        return '<p class="note">No identities were recorded for this run.</p>'
    bar_h, gap, label_w, plot_w = 20, 6, 170, 420
    height = len(counts) * (bar_h + gap) + gap
    width = label_w + plot_w + 70
    top = max(n for _, n in counts) or 1
    parts = [
        f'<svg id="chart-status" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Identities by status">',
        "<title>Identities by status</title>",
    ]
    for i, (status, n) in enumerate(counts):
        y = gap + i * (bar_h + gap)
        w = max(1.0, plot_w * n / top)
        colour = status_colours(status)[1]
        s = escape(status)
        parts.append(
            f'<g class="bar" data-status="{s}">'
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="13">{s}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}">'
            f"<title>{s}: {n}</title></rect>"
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" font-size="13">{n}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def coverage_chart(history: Sequence[tuple[str, str, float]]) -> str:
    """Coverage % per run (link/audit runs of these identities, then this run), as inline SVG columns (0–100 %),
    each labelled with its run's date and time (UTC)."""
    col_w, gap, plot_h, left, bottom, top_pad = 64, 16, 180, 40, 40, 20
    width = left + len(history) * (col_w + gap) + gap
    height = top_pad + plot_h + bottom
    parts = [
        f'<svg id="chart-coverage" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Customer coverage per run">',
        "<title>Customer coverage per run (%)</title>",
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width}" y2="{top_pad + plot_h}" stroke="#57606a"/>',
    ]
    for tick in (0, 50, 100):
        y = top_pad + plot_h - plot_h * tick / 100
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{tick}%</text>')
    for i, (run_id, started, pct) in enumerate(history):
        x = left + gap + i * (col_w + gap)
        h = plot_h * pct / 100
        y = top_pad + plot_h - h
        parts.append(
            f'<g class="run" data-run="{escape(run_id)}">'
            f'<rect x="{x}" y="{y:.1f}" width="{col_w}" height="{h:.1f}" fill="#0f6cbd">'
            f"<title>{escape(run_id)} ({escape(started)}): {pct:.1f}%</title></rect>"
            f'<text x="{x + col_w / 2}" y="{y - 4:.1f}" text-anchor="middle" font-size="11">{pct:.1f}</text>'
            f'<text x="{x + col_w / 2}" y="{top_pad + plot_h + 14}" text-anchor="middle" font-size="10">'
            f"{escape(started[:10])}</text>"
            f'<text x="{x + col_w / 2}" y="{top_pad + plot_h + 27}" text-anchor="middle" font-size="10">'
            f"{escape(started[11:])}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def lighthouse_chart(recognised: int, customers: int) -> str:
    """Lighthouse customers recognised (or Marketplace) against not, as two inline SVG bars."""
    bars = (("recognised", recognised, "#006100"), ("not recognised", customers - recognised, "#9C0006"))
    bar_h, gap, label_w, plot_w = 20, 6, 130, 300
    height, width, top = 2 * (bar_h + gap) + gap, label_w + plot_w + 70, max(customers, 1)
    parts = [
        f'<svg id="chart-lighthouse" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Lighthouse customers recognised">',
        "<title>Lighthouse customers recognised</title>",
    ]
    for i, (label, n, colour) in enumerate(bars):
        y, w = gap + i * (bar_h + gap), max(1.0, plot_w * n / top)
        parts.append(
            f'<g class="bar" data-verdict="{label}">'
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="13">{label}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}">'
            f"<title>{label}: {n}</title></rect>"
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" font-size="13">{n}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _cell(value: Any, kind: str) -> str:
    if value is None or value == "":
        return "<td></td>"
    if kind == "datetime" and isinstance(value, datetime):
        return f"<td>{iso_utc(value)}</td>"
    if kind == "status":
        s = escape(str(value))
        return f'<td class="s-{s}">{s}</td>'
    if kind == "yesno":
        s = escape(str(value))
        return f'<td class="{"yes" if value == "yes" else "no"}">{s}</td>'
    if kind == "int":
        return f'<td class="num">{escape(str(value))}</td>'
    if kind == "id":
        return f'<td class="id">{escape(str(value))}</td>'
    return f"<td>{escape(str(value))}</td>"


def _figure(value: Figure) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def _slug(name: str) -> str:
    return "t-" + "-".join(name.lower().split())


def _table(table: Table, lead: str = "") -> str:
    """One table's section; `lead` (trusted markup, e.g. a chart) goes between the heading and the table."""
    total = len(table.rows)
    shown = table.rows[:HTML_ROW_CAP]
    parts = [f'<section id="{_slug(table.name)}"><h2>{escape(table.name)} ({total:,})</h2>', lead]
    if table.note:
        parts.append(f'<p class="note">{escape(table.note)}</p>')
    if total > HTML_ROW_CAP:
        where = f"{table.csv_name} and coverage.xlsx" if table.csv_name else "coverage.xlsx"
        parts.append(
            f'<p class="note capped">Showing the first {HTML_ROW_CAP:,} of {total:,} rows; '
            f"every row is in {escape(where)}.</p>"
        )
    if not total:
        parts.append('<p class="note">None.</p></section>')
        return "".join(parts)
    head = "".join(
        f"<th>{escape(c)}{' (UTC)' if k == 'datetime' else ''}</th>"
        for c, k in zip(table.columns, table.kinds, strict=True)
    )
    parts.append(f'<div class="scroll"><table class="data"><thead><tr>{head}</tr></thead><tbody>')
    kinds = table.kinds
    for row in shown:
        parts.append("<tr>" + "".join(_cell(v, kinds[i]) for i, v in enumerate(row)) + "</tr>")
    parts.append("</tbody></table></div></section>")
    return "".join(parts)


def _incomplete(s: dict[str, Any]) -> str:
    """The headline of an unfinished run: how much of the inventory it covers, over the whole inventory."""
    if s["complete"]:
        return ""
    ident = s["identities"]
    return (f'<p class="incomplete"><b>{escape(s["headline"])}</b> — {ident["covered"]:,} of '
            f'{ident["inventory"]:,} identities covered ({ident["coverage_percent"]:.1f}% of the inventory)</p>')


def _lead(table: Table, s: dict[str, Any]) -> str:
    """The Lighthouse customers section opens with its recognised-vs-not chart (summary.json's figures)."""
    if table.name != LIGHTHOUSE_CUSTOMERS or "lighthouse_customers" not in s:
        return ""
    return (f"<figure><figcaption>Lighthouse customers recognised (recognised or Marketplace) vs not</figcaption>"
            f"{lighthouse_chart(s['lighthouse_recognised'], s['lighthouse_customers'])}</figure>")


def render_html(view: ReportView) -> str:
    """The whole page as one string."""
    s = view.summary
    customers = s["customers"]
    rec = s["recognition"]
    title = f"PAL coverage — run {s['run_id']}"
    kpis = [
        ("Coverage", f"{s['coverage_percent']:.1f}%"),
        ("Customers covered", f"{customers['covered']:,} / {customers['total']:,}"),
        ("Recognised", f"{rec['recognised']:,} ({rec['recognition_percent']:.1f}%)"),
        ("Identities", f"{sum(n for _, n in view.status_counts):,}"),
    ]
    if s["baseline"]:
        change = s["coverage_percent"] - s["baseline"]["coverage_percent"]
        kpis.append(("Coverage at the baseline", f"{s['baseline']['coverage_percent']:.1f}% ({change:+.1f})"))
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
        "img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}{_status_css()}</style></head><body>",
        f"<header><h1>Partner Admin Link coverage</h1><p>Run {escape(s['run_id'])} · "
        f"{escape(s['command'])} · started {escape(s['started_at'] or '')} (UTC)</p>{_incomplete(s)}</header>",
        "<nav>" + '<a href="#summary">Summary</a>'
        + "".join(f'<a href="#{_slug(t.name)}">{escape(t.name)}</a>' for t in view.tables)
        + "</nav><main>",
        '<section id="summary"><h2>Summary</h2><div class="kpis">',
        "".join(f'<div class="kpi"><span>{escape(k)}</span><b>{escape(v)}</b></div>' for k, v in kpis),
        '</div><dl class="figures">',
        "".join(f"<dt>{escape(k)}</dt><dd>{escape(_figure(v))}</dd>" for k, v in view.figures),
        "</dl>",
    ]
    out.extend(f'<p class="note">{escape(n)}</p>' for n in view.notes)
    out.append(f"<figure><figcaption>Identities by status</figcaption>{_status_chart(view.status_counts)}</figure>")
    if view.history:
        out.append(
            f"<figure><figcaption>Customer coverage per link/audit run of these identities (UTC)</figcaption>"
            f"{coverage_chart(view.history)}</figure>"
        )
    out.append("</section>")
    out.extend(_table(t, _lead(t, s)) for t in view.tables)
    out.append("</main></body></html>\n")
    return "\n".join(out)
