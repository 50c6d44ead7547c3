"""A short Markdown summary of a run for a CI job page (GitHub's `GITHUB_STEP_SUMMARY`, Azure DevOps'
`##vso[task.uploadsummary]`), rendered from summary.json alone, so it says exactly what the reports say.

Needs no journal and no pandas: `render_markdown(json.loads(Path(".../summary.json").read_text()))`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .changes import CHANGE_KINDS, CHANGE_LABELS

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")

#: "Action needed" rows shown by default (summary.json holds up to 100; the CSV/XLSX every one).
ACTION_ROWS = 20


def _cell(value: Any) -> str:
    """User text made inert: one line, Markdown's emphasis/link/code/table characters escaped, no HTML (a customer
    named `[click](…)` or `<img …>` shows as typed on the job page)."""
    text = " ".join(("" if value is None else str(value)).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    """Text for inside a code span (shown as is there): one line, no backtick to end the span early."""
    return " ".join(text.split()).replace("`", "'")


def _figures(s: dict[str, Any]) -> list[str]:
    rec, cust = s["recognition"], s["customers"]
    base = s.get("baseline") or {}
    was_cov = f" (baseline {base['coverage_percent']:.1f}%)" if base else ""
    was_rec = f" (baseline {base['recognition_percent']:.1f}%)" if base else ""
    lines = [
        f"- **Coverage**: {s['coverage_percent']:.1f}% — {cust['covered']:,} of {cust['total']:,} customers "
        f"linked to the partner ID{was_cov}",
        f"- **Recognition**: {rec['recognition_percent']:.1f}% — {rec['recognised']:,} customers linked with an "
        f"eligible role{was_rec}",
    ]
    if not s.get("complete", True):
        ident = s["identities"]
        lines.insert(0, f"- **{_cell(s['headline'])}** — {ident['covered']:,} of {ident['inventory']:,} identities "
                        f"covered ({ident['coverage_percent']:.1f}% of the inventory); resume the run")
    return lines


def _changes(s: dict[str, Any]) -> list[str]:
    if not s.get("baseline_run_id"):
        return ["", "No baseline: no earlier finished `link` or `audit` run of these identities."]
    base = s.get("baseline") or {}
    counts = s.get("changes") or {}
    found = [f"{CHANGE_LABELS[k]} {counts[k]:,}" for k in CHANGE_KINDS if counts.get(k)]
    head = f"### Since the baseline ({base.get('command', 'run')} run `{s['baseline_run_id']}`)"
    return ["", head, "", "; ".join(found) + "." if found else "Nothing changed."]


def _actions(s: dict[str, Any], limit: int) -> list[str]:
    needed = s.get("action_needed") or {"total": 0, "rows": []}
    if not needed["total"]:
        return ["", "No identity needs action."]
    lines = ["", f"### Action needed ({needed['total']:,})", "", "| customer | tenant_id | status | fix |",
             "| --- | --- | --- | --- |"]
    for row in needed["rows"][:limit]:
        lines.append(f"| {_cell(row['customer'])} | {_cell(row['tenant_id'])} | {row['status']} | "
                     f"{_cell(row['fix'])} |")
    if needed["total"] > min(limit, len(needed["rows"])):
        lines.append("")
        lines.append(f"… and {needed['total'] - min(limit, len(needed['rows'])):,} more in `coverage.xlsx` "
                     "(sheet \"Action needed\") and `identities.csv`.")
    return lines


def render_markdown(s: dict[str, Any], *, folder: str | None = None, limit: int = ACTION_ROWS) -> str:
    """The summary of one run as Markdown, from its summary.json object (`folder`: where its files are)."""
    counts = ", ".join(f"{status} {n:,}" for status, n in s["status_counts"].items()) or "none"
    lines = [
        f"## PAL {s['command']} run `{s['run_id']}`",
        "",
        *_figures(s),
        f"- **Identities per status**: {counts}",
        f"- **Exit code**: {'not finished' if s['exit_code'] is None else s['exit_code']}",
        *_changes(s),
        *_actions(s, limit),
        "",
        "### Report files",
        "",
        (f"In `{_code(folder)}`: " if folder else "") + ", ".join(f"`{name}`" for name in s.get("files", [])),
    ]
    return "\n".join(lines) + "\n"


def publish_markdown(folder: Path, target: Path | None, *, environ: Mapping[str, str] | None = None) -> list[Path]:
    """Render `folder/summary.json` as Markdown into `target` (replaced), and append it to the file
    `GITHUB_STEP_SUMMARY` names when that is set (a GitHub Actions job page); returns the files written."""
    env = os.environ if environ is None else environ
    text = render_markdown(json.loads((folder / "summary.json").read_text(encoding="utf-8")), folder=str(folder))
    written: list[Path] = []
    if target is not None:
        target.write_text(text, encoding="utf-8")
        written.append(target)
    step = env.get("GITHUB_STEP_SUMMARY")
    if step and (target is None or Path(step).resolve() != target.resolve()):
        with Path(step).open("a", encoding="utf-8") as f:
            f.write(text)
        written.append(Path(step))
    return written
