"""MLflow's search filters, orderings and page tokens, over records the registry returned.

The filter grammar is the one MLflow's clients send: comparisons joined by ``AND``, each
``IDENTIFIER OP VALUE`` where an identifier is an attribute (``name``, ``run_id``,
``attributes.status``) or ``tags.KEY``/``params.KEY``/``metrics.KEY`` (a key with dots in
backticks or quotes: ``tags.`mlflow.prompt.is_prompt```), and OP is ``= != < <= > >=``,
``LIKE``/``ILIKE`` (``%`` and ``_``), ``IN``/``NOT IN`` a list, or ``IS [NOT] NULL``. A field
a record lacks fails every comparison but ``!=`` and ``NOT IN``: the client appends
``tags.`mlflow.prompt.is_prompt` != 'true'`` to each model search, which a model without
that tag must match.

It is MLflow's language, not Modelyard's (``domain.expressions`` is richer, and its ``!=``
on a missing field is false), so it is parsed here, at the boundary, and evaluated on the
records the registry's own read operations return. Pages are keyset pages over the ordered
result: the token (opaque, ``domain.paging``'s) is the sort key of the last item sent, so a
page never repeats or skips an item that was there, whatever is inserted meanwhile.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import total_ordering
from typing import Any, Generic, TypeVar

from modelyard.domain.paging import decode_token, encode_token
from modelyard.errors import InvalidInput

T = TypeVar("T")

_KINDS = {
    "attribute": "attribute", "attributes": "attribute", "attr": "attribute",
    "run": "attribute", "tag": "tag", "tags": "tag", "param": "param", "params": "param",
    "parameter": "param", "parameters": "param", "metric": "metric", "metrics": "metric",
}
_TOKEN = re.compile(r"""\s*(?:
    (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
   |(?P<bq>`[^`]*`)
   |(?P<num>-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
   |(?P<op>!=|<>|<=|>=|==|=|<|>)
   |(?P<punct>[(),.])
   |(?P<word>[A-Za-z_][A-Za-z0-9_\-]*))""", re.VERBOSE | re.ASCII)
_WORD_OPS = ("LIKE", "ILIKE", "IN")


@dataclass(frozen=True)
class Fields:
    """What a filter or an ordering can read of one record."""

    attributes: Mapping[str, Any]
    tags: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)

    def get(self, kind: str, key: str) -> Any:
        source = {"attribute": self.attributes, "tag": self.tags, "param": self.params,
                  "metric": self.metrics}[kind]
        return source.get(key)


@dataclass(frozen=True)
class Clause:
    kind: str
    key: str
    op: str
    value: Any  # str, float, tuple of them, or None for IS [NOT] NULL

    def matches(self, fields: Fields) -> bool:
        found = fields.get(self.kind, self.key)
        if self.op in ("IS NULL", "IS NOT NULL"):
            return (found is None) == (self.op == "IS NULL")
        if found is None:
            return self.op in ("!=", "NOT IN")
        if self.op in ("IN", "NOT IN"):
            return (_text(found) in self.value) == (self.op == "IN")
        if self.op in ("LIKE", "ILIKE"):
            flags = re.IGNORECASE if self.op == "ILIKE" else 0
            return re.fullmatch(_like_regex(str(self.value)), _text(found),
                                flags | re.DOTALL) is not None
        left, right = _comparable(found, self.value)
        if left is None or right is None:
            return self.op == "!="
        return bool({"=": left == right, "!=": left != right, "<": left < right,
                     "<=": left <= right, ">": left > right, ">=": left >= right}[self.op])


@dataclass(frozen=True)
class Filter:
    clauses: tuple[Clause, ...] = ()

    def matches(self, fields: Fields) -> bool:
        return all(c.matches(fields) for c in self.clauses)

    def pinned(self, key: str) -> str | None:
        """The value an ``attribute = 'x'`` clause pins ``key`` to, if any (to narrow the
        registry read before filtering)."""
        for c in self.clauses:
            if c.kind == "attribute" and c.key == key and c.op == "=" and isinstance(
                    c.value, str):
                return c.value
        return None


def parse_filter(text: str | None, attributes: Sequence[str],
                 kinds: Sequence[str] = ("attribute", "tag")) -> Filter:
    """Parse MLflow's filter string; ``attributes`` and ``kinds`` are what this search
    knows, and anything else is refused (``INVALID_PARAMETER_VALUE``) naming them."""
    tokens = _tokens(text or "")
    clauses: list[Clause] = []
    position = 0
    while position < len(tokens):
        clause, position = _clause(tokens, position, attributes, kinds)
        clauses.append(clause)
        if position < len(tokens):
            word = tokens[position][1]
            if word.upper() != "AND":
                raise _syntax(text, f"expected AND, found {word!r}"
                              + (" (MLflow searches join conditions with AND only)"
                                 if word.upper() == "OR" else ""))
            position += 1
            if position == len(tokens):
                raise _syntax(text, "a condition must follow AND")
    return Filter(tuple(clauses))


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            raise _syntax(text, f"unexpected character {text[position:].lstrip()[:1]!r}")
        out.append((match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    return out


def _clause(tokens: list[tuple[str, str]], at: int, attributes: Sequence[str],
            kinds: Sequence[str]) -> tuple[Clause, int]:
    kind, key, at = _identifier(tokens, at, attributes, kinds)
    op, at = _operator(tokens, at)
    if op in ("IS NULL", "IS NOT NULL"):
        return Clause(kind, key, op, None), at
    if op in ("IN", "NOT IN"):
        values, at = _value_list(tokens, at)
        return Clause(kind, key, op, values), at
    if at >= len(tokens) or tokens[at][0] not in ("str", "num"):
        raise _syntax(None, f"expected a value after {key} {op}")
    token_kind, raw = tokens[at]
    value: Any = _unquote(raw) if token_kind == "str" else float(raw)
    return Clause(kind, key, "!=" if op == "<>" else "=" if op == "==" else op, value), at + 1


def _identifier(tokens: list[tuple[str, str]], at: int, attributes: Sequence[str],
                kinds: Sequence[str]) -> tuple[str, str, int]:
    if at >= len(tokens) or tokens[at][0] not in ("word", "bq", "str"):
        raise _syntax(None, "expected a field name")
    first = _unquote(tokens[at][1])
    at += 1
    kind = _KINDS.get(first.lower()) if tokens[at - 1][0] == "word" else None
    if kind is not None and at < len(tokens) and tokens[at][1] == ".":
        parts: list[str] = []
        at += 1
        while at < len(tokens) and tokens[at][0] in ("word", "bq", "str", "num"):
            parts.append(_unquote(tokens[at][1]))
            at += 1
            if at < len(tokens) and tokens[at][1] == "." and tokens[at - 1][0] == "word":
                at += 1
                continue
            break
        key = ".".join(parts)
        if not key:
            raise _syntax(None, f"expected a key after {first}.")
    else:
        kind, key = "attribute", first
    if kind not in kinds:
        raise InvalidInput(f"this search cannot filter on {kind}s ({key!r})",
                           hint=f"it filters on: {', '.join(kinds)}")
    if kind == "attribute" and key not in attributes:
        raise InvalidInput(f"invalid attribute {key!r} in the filter",
                           hint=f"valid attributes: {', '.join(attributes)}")
    return kind, key, at


def _operator(tokens: list[tuple[str, str]], at: int) -> tuple[str, int]:
    if at >= len(tokens):
        raise _syntax(None, "expected a comparison operator")
    token_kind, raw = tokens[at]
    if token_kind == "op":
        return raw, at + 1
    word = raw.upper()
    following = [t[1].upper() for t in tokens[at + 1:at + 3]]
    if token_kind == "word" and word in _WORD_OPS:
        return word, at + 1
    if token_kind == "word" and word == "NOT" and following[:1] == ["IN"]:
        return "NOT IN", at + 2
    if token_kind == "word" and word == "IS" and following[:1] == ["NULL"]:
        return "IS NULL", at + 2
    if token_kind == "word" and word == "IS" and following == ["NOT", "NULL"]:
        return "IS NOT NULL", at + 3
    raise _syntax(None, f"expected a comparison operator, found {raw!r}")


def _value_list(tokens: list[tuple[str, str]], at: int) -> tuple[tuple[str, ...], int]:
    if at >= len(tokens) or tokens[at][1] != "(":
        raise _syntax(None, "IN needs a parenthesised list of values")
    values: list[str] = []
    at += 1
    while at < len(tokens) and tokens[at][0] in ("str", "num"):
        values.append(_unquote(tokens[at][1]))
        at += 1
        if at < len(tokens) and tokens[at][1] == ",":
            at += 1
    if at >= len(tokens) or tokens[at][1] != ")" or not values:
        raise _syntax(None, "IN needs a parenthesised list of values")
    return tuple(values), at + 1


def _unquote(raw: str) -> str:
    if raw[:1] in ("'", '"', "`") and raw[-1:] == raw[:1] and len(raw) >= 2:
        body = raw[1:-1]
        return re.sub(r"\\(.)", r"\1", body) if raw[0] != "`" else body
    return raw


def _syntax(text: str | None, problem: str) -> InvalidInput:
    shown = f" in filter {text[:200]!r}" if text else ""
    return InvalidInput(f"invalid search filter{shown}: {problem}",
                        hint="e.g. name = 'fraud' AND tags.team = 'risk'")


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _comparable(found: Any, wanted: Any) -> tuple[Any, Any]:
    """Both sides as numbers when the literal is one (a string field that reads as a
    number counts as it), else both as text; None for a side that cannot be compared."""
    if isinstance(wanted, float):
        if isinstance(found, bool):
            return None, wanted
        if isinstance(found, int | float):
            return float(found), wanted
        try:
            return float(str(found)), wanted
        except ValueError:
            return None, wanted
    return _text(found), wanted


def _like_regex(pattern: str) -> str:
    return "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)


# -- orderings and pages -------------------------------------------------------------------

@total_ordering
class _Key:
    """One sort value: missing values last in either direction, then by value."""

    __slots__ = ("descending", "value")

    def __init__(self, value: Any, descending: bool) -> None:
        self.value, self.descending = value, descending

    def _rank(self) -> tuple[bool, Any]:
        return self.value is None, self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __lt__(self, other: _Key) -> bool:
        if (self.value is None) != (other.value is None):
            return other.value is None
        if self.value is None or self.value == other.value:
            return False
        try:
            less = bool(self.value < other.value)
        except TypeError:  # values of different kinds: order by their text
            less = str(self.value) < str(other.value)
        return less != self.descending


@dataclass(frozen=True)
class Order(Generic[T]):
    """Sort keys (reader, descending), the record's identity last so the order is total."""

    keys: tuple[tuple[Callable[[T], Any], bool], ...]
    spec: str

    def key(self, item: T) -> list[Any]:
        return [read(item) for read, _ in self.keys]

    def rank(self, values: Sequence[Any]) -> tuple[_Key, ...]:
        return tuple(_Key(v, desc) for v, (_, desc) in zip(values, self.keys, strict=True))


def parse_order(order_by: Sequence[str], readers: Mapping[str, Callable[[T], Any]],
                identity: Sequence[tuple[Callable[[T], Any], bool]],
                default: Sequence[str], prefixed: Mapping[str, Callable[[str], Callable[[T], Any]]]
                | None = None) -> Order[T]:
    """``["name ASC", "last_updated_timestamp DESC", "metrics.auc"]`` into an Order.

    ``readers`` are the attribute keys this search sorts on; ``prefixed`` maps ``metrics``,
    ``params``, ``tags`` (runs) to a reader for a key.
    """
    keys: list[tuple[Callable[[T], Any], bool]] = []
    for clause in (order_by or default):
        words = clause.strip().split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].upper() not in (
                "ASC", "DESC")):
            raise InvalidInput(f"invalid order_by clause {clause!r}",
                               hint="use 'FIELD', 'FIELD ASC' or 'FIELD DESC'")
        keys.append((_reader(words[0], readers, prefixed or {}),
                     len(words) == 2 and words[1].upper() == "DESC"))
    spec = "|".join(order_by or default)
    return Order((*keys, *identity), spec)


def _reader(name: str, readers: Mapping[str, Callable[[T], Any]],
            prefixed: Mapping[str, Callable[[str], Callable[[T], Any]]]
            ) -> Callable[[T], Any]:
    head, dot, rest = name.partition(".")
    kind = _KINDS.get(head.lower()) if dot else None
    if kind == "attribute":
        name = rest
    elif kind is not None and kind in prefixed and rest:
        return prefixed[kind](_unquote(rest))
    found = readers.get(name.strip("`"))
    if found is None:
        raise InvalidInput(f"cannot order by {name!r}",
                           hint=f"order by one of: {', '.join(readers)}")
    return found


def check_max_results(value: int | None, default: int, limit: int) -> int:
    if value is None:
        return default
    if not 1 <= value <= limit:
        raise InvalidInput(f"max_results must be between 1 and {limit}, got {value}")
    return value


def page(items: Sequence[T], order: Order[T], max_results: int, token: str | None,
         kind: str) -> tuple[list[T], str | None]:
    """One page of ``items`` in ``order`` after the token's key, and the next token."""
    kind = f"mlflow-{kind}:{order.spec}"
    keyed = sorted(((order.rank(order.key(item)), order.key(item), item) for item in items),
                   key=lambda entry: entry[0])
    after = decode_token(token, kind, len(order.keys))
    if after is not None:
        start = order.rank(list(after))
        keyed = [entry for entry in keyed if entry[0] > start]
    chosen = keyed[:max_results]
    more = len(keyed) > max_results
    return [item for _, _, item in chosen], (
        encode_token(kind, tuple(chosen[-1][1])) if more else None)
