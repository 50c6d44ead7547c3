"""YAML → `RawRow`s: both shapes (flat `identities:`, and `customers:` whose keys their identities inherit).

Every value is read as text, exactly as written (no YAML 1.1 type guessing: 012345 stays "012345", `no` stays
"no"). The document is composed with PyYAML's SafeLoader (no Python object is ever constructed), counting
aliases while composing and walking with a visit budget and a cycle check, so an alias bomb fails fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from .reading import FileDefaults, Issue, RawRow, fail
from .schema import CLOUD, COLUMN_ALIASES, FEDERATION_IDENTITY, KEY_VAULT, PARTNER_ID, SECRET_VALUE_COLUMNS, squash
from .text import clean, show

MAX_YAML_ALIASES: Final = 100_000
MAX_YAML_DEPTH: Final = 32

_MERGE_TAG = "tag:yaml.org,2002:merge"
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_YAML_KEYS = frozenset({"identities", "customers"})
_LIST_FIX = "add an identities: list (see docs/inventory.md)"
_Item = tuple[str, int, yaml.Node]


class _AliasLimit(Exception):
    """Raised inside the composer when a document holds more aliases than any inventory needs."""


class _YamlLoader(yaml.SafeLoader):
    """SafeLoader that counts nodes and aliases while composing, so alias bombs are refused early."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.nodes = 0
        self.aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.nodes += 1
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise _AliasLimit
        return super().compose_node(parent, index)


@dataclass(slots=True)
class _Fields:
    """One entry's keys: values and labels by column, extra keys, problems, nested lists."""

    values: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    extras: list[tuple[str, str]] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    nested: dict[str, yaml.Node] = field(default_factory=dict)


_NOTHING: Final = _Fields()  # what an entry without a customer entry inherits


class _Reader:
    """Turns composed nodes into text and fields, with a visit budget and cycle check so aliases cannot explode."""

    def __init__(self, source: str, budget: int) -> None:
        self.source = source
        self.budget = budget

    def _tick(self, node: yaml.Node, depth: int) -> None:
        self.budget -= 1
        if self.budget < 0 or depth > MAX_YAML_DEPTH:
            raise fail(
                f"{self.source}:{node.start_mark.line + 1}",
                "expands to more than an inventory can hold (alias bomb or deep nesting)",
                "write the inventory without deeply nested aliases",
            )

    def _recursive(self, node: yaml.Node) -> Exception:
        return fail(
            f"{self.source}:{node.start_mark.line + 1}",
            "contains a recursive alias",
            "remove the alias that refers to its own parent",
        )

    def text(self, node: yaml.Node, depth: int = 0, path: frozenset[int] = frozenset()) -> str:
        """Any node as one line of text (lists joined by ", ", mappings as "key: value")."""
        self._tick(node, depth)
        if isinstance(node, yaml.ScalarNode):
            value = str(node.value)
            return "" if node.style is None and value in _NULLS else value
        if id(node) in path:
            raise self._recursive(node)
        inner = path | {id(node)}
        if isinstance(node, yaml.SequenceNode):
            return ", ".join(self.text(child, depth + 1, inner) for child in node.value)
        return ", ".join(
            f"{key}: {self.text(value, depth + 1, inner)}" for key, _, value in self.items(node, depth, inner)
        )

    def is_empty(self, node: yaml.Node) -> bool:
        """An empty scalar entry ("- " alone, `~`): no content, like an empty CSV row."""
        return isinstance(node, yaml.ScalarNode) and self.text(node) == ""

    def items(self, node: yaml.Node, depth: int = 0, path: frozenset[int] = frozenset()) -> list[_Item]:
        """(key, line, value) of a mapping with `<<` merge keys applied (explicit keys win)."""
        if not isinstance(node, yaml.MappingNode):
            return []
        merged: list[_Item] = []
        own: list[_Item] = []
        for key_node, value_node in node.value:
            self._tick(key_node, depth)
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _MERGE_TAG:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    if id(source) in path:
                        raise self._recursive(source)
                    merged.extend(self.items(source, depth + 1, path | {id(source)}))
                continue
            own.append((self.text(key_node, depth + 1, path), key_node.start_mark.line + 1, value_node))
        overridden = {squash(key) for key, _, _ in own}
        return [item for item in merged if squash(item[0]) not in overridden] + own

    def fields(self, node: yaml.MappingNode) -> _Fields:
        """An entry's keys sorted into columns, extra keys and nested lists; a key twice is a problem."""
        found = _Fields()
        lines: dict[str, int] = {}
        for key, line, value in self.items(node):
            squashed = squash(key)
            if squashed in _YAML_KEYS:
                found.nested[squashed] = value
                continue
            if squashed in SECRET_VALUE_COLUMNS:
                raise fail(
                    f"{self.source}:{line}",
                    f"key {show(key)} would hold a secret value",
                    "the inventory only points to Key Vault: delete it and use secret_uri, or key_vault + secret_name",
                )
            canonical = COLUMN_ALIASES.get(squashed)
            if canonical is None:
                found.extras.append((key, self.text(value)))
            elif canonical in lines:
                found.issues.append((key, f"is given twice (lines {lines[canonical]} and {line})", "keep one of them"))
            else:
                lines[canonical] = line
                found.labels[canonical] = key
                found.values[canonical] = self.text(value) if isinstance(value, yaml.ScalarNode) else ""
                if not isinstance(value, yaml.ScalarNode):
                    found.issues.append((key, "must be a single value, not a list or mapping", f"write {key}: VALUE"))
        return found


def _compose(source: str, text: str) -> tuple[yaml.Node, int]:
    """The document's root node and its node count; any YAML failure is one InventoryError."""
    loader: _YamlLoader | None = None
    try:
        loader = _YamlLoader(text)  # its reader already refuses non-printable characters
        root = loader.get_single_node()
    except _AliasLimit:
        raise fail(
            source,
            f"uses more than {MAX_YAML_ALIASES:,} YAML aliases (an alias bomb?)",
            "write the inventory without so many aliases (or as CSV)",
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        what = f"is not valid YAML ({exc.problem or exc.context})"
        raise fail(where, what, "fix the YAML syntax (indentation, quotes, colons)") from None
    except yaml.YAMLError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise fail(source, f"is not valid YAML ({detail})", "save it as UTF-8 text and fix the YAML syntax") from None
    except RecursionError:
        raise fail(source, "is nested too deeply to be an inventory", "write a flat identities: list") from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        raise fail(source, "is empty", _LIST_FIX)
    return root, loader.nodes


@dataclass(slots=True)
class _Document:
    """What the top level of an inventory document holds."""

    identities: yaml.Node | None = None
    customers: yaml.Node | None = None
    defaults: FileDefaults = field(default_factory=lambda: FileDefaults({}, {}))


def _top_level(reader: _Reader, root: yaml.Node, warnings: list[str]) -> _Document:
    """The lists and the file's own defaults; a bare list is the identities."""
    source = reader.source
    if isinstance(root, yaml.SequenceNode):
        return _Document(identities=root)
    if not isinstance(root, yaml.MappingNode):
        raise fail(source, "is a single YAML value, not an inventory", _LIST_FIX)
    document = _Document()
    top: dict[str, str] = {}
    origin: dict[str, str] = {}
    for key, line, value in reader.items(root):
        squashed = squash(key)
        canonical = COLUMN_ALIASES.get(squashed)
        if canonical in (PARTNER_ID, KEY_VAULT, CLOUD, FEDERATION_IDENTITY):
            if not isinstance(value, yaml.ScalarNode):
                raise fail(f"{source}:{line}", f"{key} must be a single value", f"write {key}: VALUE")
            top[canonical] = clean(reader.text(value))
            origin[canonical] = f"the YAML default at {source}:{line}"
        elif squashed == "identities":
            document.identities = value
        elif squashed == "customers":
            document.customers = value
        elif not key.startswith(("x-", ".")):  # x-… / .… keys hold anchors to reuse (as in Compose)
            warnings.append(
                f"{source}:{line}: unknown top-level key {show(key)} ignored — expected partner_id, "
                "key_vault, cloud, federation_identity, identities or customers"
            )
    document.defaults = FileDefaults(top, origin)
    return document


def yaml_rows(source: str, text: str, warnings: list[str]) -> Iterator[RawRow]:
    """The identities of a YAML inventory, each at the line where its entry starts."""
    root, nodes = _compose(source, text)
    reader = _Reader(source, budget=max(500_000, 50 * nodes))
    document = _top_level(reader, root, warnings)
    if document.identities is None and document.customers is None:
        raise fail(source, "has no identities: or customers: list", "add one (see docs/inventory.md)")
    entries = _Entries(reader, document.defaults)
    for name, node in (("identities", document.identities), ("customers", document.customers)):
        if node is None or reader.is_empty(node):
            continue
        if not isinstance(node, yaml.SequenceNode):
            raise fail(
                f"{source}:{node.start_mark.line + 1}",
                f"{name} must be a list",
                f"write each entry of {name}: on its own line starting with '- '",
            )
        for item in node.value:
            yield from entries.identity(item, _NOTHING) if name == "identities" else entries.customer(item)


class _Entries:
    """Entries of the two lists → RawRows, all carrying the file's own defaults."""

    def __init__(self, reader: _Reader, defaults: FileDefaults) -> None:
        self.reader = reader
        self.defaults = defaults

    def _broken(self, node: yaml.Node, inherited: _Fields, issues: list[Issue]) -> RawRow:
        """An entry that cannot be an identity: skipped with `issues` alone."""
        return RawRow(
            source=self.reader.source,
            line=node.start_mark.line + 1,
            values=inherited.values,
            labels={},
            extra=tuple(inherited.extras),
            issues=tuple(issues),
            readable=False,
        )

    def identity(self, node: yaml.Node, inherited: _Fields) -> Iterator[RawRow]:
        """One identity entry; values missing from it come from its customer entry (`inherited`)."""
        if self.reader.is_empty(node):
            return  # an empty "- " entry has no content, like an empty CSV row
        if not isinstance(node, yaml.MappingNode):
            problem = ("identity", "is not a mapping of key: value", "write the identity as indented key: value lines")
            yield self._broken(node, inherited, [problem])
            return
        own = self.reader.fields(node)
        if "identities" in own.nested:
            own.issues.append(("identities", "is nested inside an identity", "list identities under a customer entry"))
        if not own.values and not own.extras and not own.issues:
            return
        own_labels = {label for label, _ in own.extras}
        yield RawRow(
            source=self.reader.source,
            line=node.start_mark.line + 1,
            values={**inherited.values, **own.values},
            labels={**inherited.labels, **own.labels},
            extra=tuple([e for e in inherited.extras if e[0] not in own_labels] + own.extras),
            issues=tuple(inherited.issues + own.issues),
            defaults=self.defaults,
        )

    def customer(self, node: yaml.Node) -> Iterator[RawRow]:
        """A customer entry: its keys are inherited by each of its identities (or it is itself one identity)."""
        if self.reader.is_empty(node):
            return
        if not isinstance(node, yaml.MappingNode):
            fix = "write the customer as indented key: value lines with an identities: list"
            yield self._broken(node, _NOTHING, [("customer", "is not a mapping of key: value", fix)])
            return
        fields = self.reader.fields(node)
        identities = fields.nested.get("identities")
        if identities is None:
            yield from self.identity(node, _NOTHING)
            return
        entries = identities.value if isinstance(identities, yaml.SequenceNode) else None
        if entries is None and not self.reader.is_empty(identities):
            problem = ("identities", "must be a list", "write each identity on its own line starting with '- '")
            yield self._broken(node, fields, [*fields.issues, problem])
            return
        count = 0
        for entry in entries or []:
            for row in self.identity(entry, fields):
                count += 1
                yield row
        if not count:
            problem = ("identities", "is empty", "list at least one identity (client_id and its secret)")
            yield self._broken(node, fields, [*fields.issues, problem])
