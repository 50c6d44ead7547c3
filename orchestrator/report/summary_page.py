"""summary.html: one printable page for management — figures and customer names, no GUIDs.

Coverage and recognition now and at the baseline (last quarter) with the change, what changed by customer,
the customers needing action grouped by what to do, and the coverage trend (inline SVG). coverage.html and
coverage.xlsx stay the detailed evidence; this page points at them. Self-contained like coverage.html
(inline CSS, no script, no external URL) and every value is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from .changes import CHANGE_KINDS, CHANGE_LABELS
from .html import coverage_chart
from .view import ReportView

#: Customer names listed per group before "and N more".
NAMES_SHOWN = 25

_CSS = """
body { font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px auto; max-width: 760px;
       color: #1f2328; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 2px; color: #0f3d6e; }
h2 { font-size: 15px; border-bottom: 2px solid #d0d7de; padding-bottom: 2px; margin: 18px 0 8px; }
p.sub { margin: 0; color: #57606a; }
p.incomplete { background: #FFC7CE; color: #9C0006; padding: 6px 10px; font-weight: 600; }
table.kpi { border-collapse: collapse; width: 100%; }
table.kpi th, table.kpi td { border-bottom: 1px solid #d0d7de; padding: 4px 8px; text-align: left; }
table.kpi td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.up { color: #006100; } td.down { color: #9C0006; }
ul { margin: 4px 0; padding-left: 20px; } li { margin: 3px 0; }
.names { color: #444; }
.note { color: #57606a; font-style: italic; }
svg { max-width: 100%; height: auto; }
@media print { body { margin: 0; max-width: none; } @page { size: A4; margin: 14mm; } h2 { break-after: avoid; } }
"""


_NONE = '<td class="num">—</td>'


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(escape(n) for n in names[:NAMES_SHOWN])
    more = len(names) - NAMES_SHOWN
    return shown + (f" and {more:,} more" if more > 0 else "")


def _delta(now: float, before: float | None) -> str:
    if before is None:
        return _NONE
    d = round(now - before, 1)
    css = "up" if d > 0 else "down" if d < 0 else ""
    return f'<td class="num {css}">{d:+.1f} pts</td>'


def _figures(s: dict[str, Any]) -> str:
    base = s.get("baseline") or {}
    rec = s["recognition"]
    total = s["customers"]["total"]
    then = (f"last time: {escape(base['command'])} run of {escape(when_text(base.get('started_at')))}" if base
            else "last time")
    rows = [
        ("Customers covered (linked to our partner ID)", s["coverage_percent"], s["customers"]["covered"],
         base.get("coverage_percent"), base.get("covered")),
        ("Customers recognised (linked, with an eligible role)", rec["recognition_percent"], rec["recognised"],
         base.get("recognition_percent"), base.get("recognised")),
    ]
    body = "".join(
        f"<tr><td>{escape(label)}</td><td class=\"num\">{pct:.1f}% ({n:,} of {total:,})</td>"
        + (f'<td class="num">{b_pct:.1f}% ({b_n:,} of {base["customers"]:,})</td>' if base else _NONE)
        + _delta(pct, b_pct if base else None) + "</tr>"
        for label, pct, n, b_pct, b_n in rows
    )
    return (f'<table class="kpi"><thead><tr><th></th><th>now</th><th>{then}</th><th>change</th></tr></thead>'
            f"<tbody>{body}</tbody></table>")


def when_text(iso: str | None) -> str:
    """`2025-03-01T09:00:00Z` → `2025-03-01 09:00 UTC`."""
    return f"{iso[:16].replace('T', ' ')} UTC" if iso else "unknown"


def _changes(view: ReportView) -> str:
    if view.changes.baseline is None:
        return '<p class="note">No earlier link or audit run of these customers to compare with.</p>'
    by_kind: dict[str, dict[str, None]] = {k: {} for k in CHANGE_KINDS}
    for row in view.changes.rows:
        by_kind[row[5]].setdefault(str(row[0]), None)
    counts = view.changes.counts()
    items = [
        f"<li><b>{escape(CHANGE_LABELS[k])}: {counts[k]:,}</b> identit{'y' if counts[k] == 1 else 'ies'} "
        f'<span class="names">— {_names(list(by_kind[k]))}</span></li>'
        for k in CHANGE_KINDS if counts[k]
    ]
    return "<ul>" + "".join(items) + "</ul>" if items else '<p class="note">Nothing changed.</p>'


def _actions(view: ReportView) -> str:
    if not view.actions:
        return '<p class="note">No customer needs action.</p>'
    items = [
        f"<li><b>{escape(fix)}</b> — {len(names):,} customer{'s' if len(names) != 1 else ''}: "
        f'<span class="names">{_names(names)}</span></li>'
        for fix, names in view.actions
    ]
    return "<ul>" + "".join(items) + "</ul>"


def render_summary_page(view: ReportView) -> str:
    """The whole page as one string."""
    s = view.summary
    started = when_text(s["started_at"])
    banner = ""
    if not s["complete"]:
        ident = s["identities"]
        banner = (f'<p class="incomplete">{escape(s["headline"])} — {ident["covered"]:,} of {ident["inventory"]:,} '
                  f"identities covered ({ident['coverage_percent']:.1f}% of the inventory). Figures below cover "
                  "only what the run reached.</p>")
    trend = (f"<h2>Coverage per run</h2>{coverage_chart(view.history)}" if view.history
             else "")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">',
        f"<title>Partner Admin Link — summary of {escape(started)}</title><style>{_CSS}</style></head><body>",
        "<h1>Partner Admin Link — summary</h1>",
        f"<p class=\"sub\">{escape(s['command'])} run of {escape(started)} · partner ID "
        f"{escape(', '.join(s['partner_ids']))} · {s['customers']['total']:,} customers</p>",
        banner,
        "<h2>Coverage and recognition</h2>",
        _figures(s),
        "<h2>What changed since the baseline</h2>",
        _changes(view),
        "<h2>Customers needing action, by what to do</h2>",
        _actions(view),
        trend,
        '<p class="note">Details per identity: coverage.html and coverage.xlsx in the same folder '
        f"(run {escape(s['run_id'])}).</p>",
        "</body></html>\n",
    ]
    return "\n".join(p for p in parts if p)
