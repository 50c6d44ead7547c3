"""Row and inventory rules: a raw row becomes an `Identity` or a skipped row, and duplicates are resolved.

Per row: text kept as written is checked for bidirectional controls (a warning: the row runs); every cell must
be free of NUL bytes; then every column's validator runs (`columns.VALIDATORS`) with the defaults in force for
that row; any problem skips the row, with all of its reasons. Over the inventory: the same identity (tenant +
client ID) twice runs once, from its first line; copies that ask for different partner IDs are all skipped,
because guessing which one was meant could attribute the customer to the wrong partner.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..models import Identity, Problem, SkippedRow
from .columns import Cells, secret_location, validate
from .defaults import Scope
from .reading import FileDefaults, Issue, RawRow
from .schema import CLIENT_ID, CUSTOMER, FEDERATION_IDENTITY, PARTNER_ID, TENANT_ID, TEXT_COLUMNS, TOKEN_FILE
from .text import BIDI, clean, safe
from .vaults import Vaults


class _Shared:
    """One copy of each value rows repeat (a partner ID, a customer, a tenant, extra columns' values): 100,000
    rows of one partner ID hold one string, not 100,000 equal ones."""

    __slots__ = ("extras", "texts")

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.extras: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = {}


class Builder:
    """Judges rows one at a time and collects identities, problems and the row count."""

    def __init__(self, options: Scope, warnings: list[str]) -> None:
        self.options = options
        self.warnings = warnings
        self.rows = 0
        self._identities: list[Identity] = []
        self._problems: list[Problem] = []
        self._vaults = Vaults()
        self._file_defaults: FileDefaults | None = None
        self._file_scope = options
        self._same = _Shared()

    def add_all(self, rows: Iterable[RawRow]) -> None:
        """Judge every row a reader yields (a reader's InventoryError stops here, half-way or not)."""
        for row in rows:
            self.add(row)

    def add(self, row: RawRow) -> None:
        """Judge one row with content: it becomes an Identity or a skipped row."""
        self.rows += 1
        if not row.readable:
            self._skip(row, row.issues)
            return
        issues: list[Issue] = list(row.issues)
        everything = "".join(row.values.values()) + "".join([text for _, text in row.extra])
        if "\x00" in everything:
            issues.extend(_nul_issues(row))
        if BIDI.search(everything):
            self.warnings.extend(_bidi_warnings(row))
        cells = Cells(row.values, self._scope(row.defaults), self._vaults, row.labels.keys())
        for column, fault in validate(cells):
            issues.append((row.labels.get(column, column), fault.message, fault.fix))
        if issues:
            if row.note:
                issues.append(("row", row.note, "close the quote that was left open"))
            self._skip(row, issues, cells.text(PARTNER_ID))
            return
        self._identities.append(_identity(row, cells, self._same))

    def _scope(self, defaults: FileDefaults | None) -> Scope:
        """The defaults in force for a row: the options, overridden by its file's own defaults."""
        if defaults is None:
            return self.options
        if defaults is not self._file_defaults:
            self._file_defaults = defaults
            self._file_scope = self.options.override(defaults.values, defaults.origins)
        return self._file_scope

    def _skip(self, row: RawRow, issues: Sequence[Issue], partner_id: str = "") -> None:
        """Record an invalid row: one SkippedRow shared by all of its problems."""
        values = row.values
        skipped = SkippedRow(
            customer=safe(clean(values.get(CUSTOMER, ""))),
            tenant_id=safe(clean(values.get(TENANT_ID, ""))),
            client_id=safe(clean(values.get(CLIENT_ID, ""))),
            partner_id=safe(partner_id or clean(values.get(PARTNER_ID, ""))),
            extra=row.extra,
            source=row.source,
            line=row.line,
        )
        for column, message, fix in issues:
            self._problems.append(Problem(row.source, row.line, column, message, fix, skipped))

    def finish(self) -> tuple[tuple[Identity, ...], tuple[Problem, ...]]:
        """Resolve duplicates (first runs; conflicting partner IDs skip every copy) and order problems by line."""
        first: dict[str, Identity] = {}
        groups: dict[str, list[Identity]] = {}  # only keys given more than once: no list per identity
        for identity in self._identities:
            key = identity.key
            earlier = first.setdefault(key, identity)
            if earlier is not identity:
                groups.setdefault(key, [earlier]).append(identity)
        del first  # 100,000 keys: let them go before the identities are copied into a tuple
        if not groups:
            keep = self._identities
        else:
            keep = []
            for identity in self._identities:
                group = groups.get(identity.key)
                if group is None or (identity is group[0] and len({i.partner_id for i in group}) == 1):
                    keep.append(identity)
                else:
                    self._problems.append(_duplicate(identity, group))
        problems = sorted(self._problems, key=lambda p: (p.source, p.line))
        return tuple(keep), tuple(problems)


def _nul_issues(row: RawRow) -> list[Issue]:
    """A NUL byte in any cell (known or extra column) makes the row invalid."""
    return [
        (row.labels.get(column, column), "contains a NUL byte", "remove it (save the file again as CSV UTF-8)")
        for column, raw in [*row.values.items(), *row.extra]
        if "\x00" in raw
    ]


_BIDI_WARNING = (
    "contains a bidirectional control character that can make it display spoofed; it is shown escaped in reports"
)


def _bidi_warnings(row: RawRow) -> list[str]:
    """Text kept as written (customer, token_file, extra columns) with bidi controls: the row runs, with a warning."""
    texts = [(column, clean(row.values.get(column, ""))) for column in TEXT_COLUMNS]
    texts.extend(row.extra)
    return [
        f"{row.source}:{row.line}: {row.labels.get(column, column)}: {_BIDI_WARNING}"
        for column, text in texts
        if BIDI.search(text)
    ]


def _identity(row: RawRow, cells: Cells, shared: _Shared) -> Identity:
    """The Identity of a row whose every column is valid; values equal to an earlier row's are that row's objects
    (`shared`), so 100,000 rows of one partner ID hold one partner ID string."""
    cloud = cells.cloud
    assert cloud is not None  # a row without a known cloud has a fault
    same = shared.texts.setdefault
    customer, tenant, partner = cells.text(CUSTOMER), cells.text(TENANT_ID), cells.text(PARTNER_ID)
    return Identity(
        customer=same(customer, customer),
        tenant_id=same(tenant, tenant),
        client_id=cells.text(CLIENT_ID),
        partner_id=same(partner, partner),
        cloud=cloud,
        secret_uri=secret_location(cells),
        credential_type=cells.credential_type,
        token_file=cells.text(TOKEN_FILE) or None,
        extra=shared.extras.setdefault(row.extra, row.extra) if row.extra else (),
        source=row.source,
        line=row.line,
        federation_identity=cells.text(FEDERATION_IDENTITY) or None,
    )


def _duplicate(identity: Identity, group: list[Identity]) -> Problem:
    """The problem that skips `identity`, a later or conflicting copy in its duplicate `group`."""
    first = group[0]
    if len({i.partner_id for i in group}) > 1:
        others = ", ".join(f"line {i.line} ({i.partner_id})" for i in group if i is not identity)
        column = PARTNER_ID
        message = (
            f"this identity has different partner IDs: line {identity.line} "
            f"({identity.partner_id}) and {others}; all copies are skipped"
        )
        fix = "one identity links to one partner ID: keep one row and delete the others"
    else:
        column = f"{TENANT_ID}+{CLIENT_ID}"
        message = (
            f"duplicate of line {first.line} (same tenant and client ID); "
            f"line {first.line} runs, line {identity.line} is skipped"
        )
        fix = "delete the duplicate row"
    row = SkippedRow(
        identity.customer,
        identity.tenant_id,
        identity.client_id,
        identity.partner_id,
        identity.extra,
        identity.source,
        identity.line,
    )
    return Problem(identity.source, identity.line, column, message, fix, row)
