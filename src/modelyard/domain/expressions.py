"""The one expression language for version searches, ``--filter`` and approval-policy gates.

One grammar serves every caller, so a filter typed on the CLI, a REST search and a policy gate
mean the same thing. Parsing is a hand-written recursive descent (never ``eval``): an expression
can only read the fields it names, and every syntax error says at which column it happened and
what was expected there. ``(`` is ambiguous between a grouped condition and a grouped sum; the
parser reads the group once and decides afterwards, so there is no backtracking.

Syntax: ``and``, ``or``, ``not`` (keywords in any case), comparisons ``= == != <> < <= > >=``,
``x in (1, 'a')``, ``x like 'fr%'``, ``has(field)``, ``true``/``false``, ``+ - * /`` and
parentheses; fields such as ``name``, ``metrics.auc``, ``tags.`my.key```, ``production.version``.

How expressions are evaluated is described in ``domain.expression_eval``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

from modelyard.errors import InvalidInput

PRODUCTION = "production"
VERSION_ROOTS: frozenset[str] = frozenset(
    {"name", "version", "stage", "description", "digest", "created_by", "created_at", "aliases",
     "datasets", "params", "metrics", "tags", "run_id", PRODUCTION}
)  # fmt: skip
MAP_ROOTS: frozenset[str] = frozenset({"params", "metrics", "tags"})

_KEYWORDS = frozenset({"and", "or", "not", "in", "like", "has", "true", "false"})
_COMPARE = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_OPERATORS = "a comparison operator (=, !=, <, <=, >, >=, in or like)"
_MAX_NESTING = 50  # parentheses, `not` and unary minus: bounds the parser's recursion
_MAX_DEPTH = 100  # syntax-tree depth: bounds the recursion of evaluate() and to_text()
MAX_LIKE_PATTERN = 1000  # characters: a bound on what one `like` costs, documented in README
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
NUMBER_PATTERN = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_TOKEN = re.compile(  # possessive string bodies: an unclosed quote fails here, at its start
    rf"""(?P<space>\s+)|(?P<num>{NUMBER_PATTERN})|(?P<ident>{_IDENT.pattern})
    |(?P<str>'(?:[^']|'')*+'|"(?:[^"]|"")*+")|(?P<bq>`[^`]*`)
    |(?P<op>==|!=|<>|<=|>=|[=<>])|(?P<punct>[-()+*/,.])""",
    re.ASCII | re.VERBOSE,
)


class Node:
    """A syntax-tree node. Nodes are frozen dataclasses, so equal text gives equal trees."""

    __slots__ = ()

    def children(self) -> tuple[Node, ...]:
        """Sub-nodes, read from the dataclass fields (tuples of nodes flattened)."""
        parts = [getattr(self, name) for name in getattr(self, "__match_args__", ())]
        flat = [x for p in parts for x in (p if isinstance(p, tuple) else (p,))]
        return tuple(x for x in flat if isinstance(x, Node))

    def fields(self) -> frozenset[str]:
        """The field paths the expression reads, as written (``metrics.auc``)."""
        return frozenset(node.text for node in walk(self) if isinstance(node, Field))

    def __str__(self) -> str:
        return to_text(self)


class Expr(Node):
    """A condition: true or false."""

    __slots__ = ()


class Value(Node):
    """An operand: a literal, a field or arithmetic on them."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Literal(Value):
    value: int | float | str


@dataclass(frozen=True, slots=True)
class Field(Value):
    path: tuple[str, ...]

    @property
    def text(self) -> str:
        """Canonical path text; keys that are not plain identifiers are backquoted."""
        keys = (k if _IDENT.fullmatch(k) else f"`{k}`" for k in self.path[1:])
        return ".".join((self.path[0], *keys))


@dataclass(frozen=True, slots=True)
class Neg(Value):
    operand: Value


@dataclass(frozen=True, slots=True)
class Arith(Value):
    op: str  # + - * /
    left: Value
    right: Value


@dataclass(frozen=True, slots=True)
class Const(Expr):
    value: bool


@dataclass(frozen=True, slots=True)
class Compare(Expr):
    op: str  # normalized: = != < <= > >=
    left: Value
    right: Value


@dataclass(frozen=True, slots=True)
class In(Expr):
    operand: Value
    options: tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class Like(Expr):
    operand: Value
    pattern: str


@dataclass(frozen=True, slots=True)
class Has(Expr):
    field: Field


@dataclass(frozen=True, slots=True)
class Not(Expr):
    operand: Expr


@dataclass(frozen=True, slots=True)
class And(Expr):
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or(Expr):
    operands: tuple[Expr, ...]


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents first (iterative, so depth never matters)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children()))


# --- parsing -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # num, str, ident, bq (backquoted), op (comparison), end, or the punctuation itself
    text: str  # as written, for messages
    pos: int  # 0-based offset
    value: Any = None


def _error(text: str, pos: int, problem: str, hint: str | None = None) -> InvalidInput:
    shown = re.sub(r"\s", " ", text)  # keep the caret under the right character
    message = f"invalid expression at column {pos + 1}: {problem}\n  {shown}\n  {' ' * pos}^"
    return InvalidInput(message, hint=hint, position=pos + 1, expression=text)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        if text[i] == "." and tokens and tokens[-1].kind in ("ident", "bq"):
            kind, raw = ".", "."  # a path dot, never the start of a number like `.5`
        elif m := _TOKEN.match(text, i):
            kind, raw = m.lastgroup or "", m.group()
        else:
            what = {"'": "string", '"': "string", "`": "key"}.get(text[i])
            problem = (
                f"expected a closing {text[i]} for this {what}, found end of expression"
                if what
                else f"expected an operator, a value or a parenthesis, found {text[i]!r}"
            )
            raise _error(text, i, problem)
        value: Any = None
        if kind == "num":
            try:
                value = float(raw) if any(c in raw for c in ".eE") else int(raw)
            except ValueError:  # more digits than int() accepts
                raise _error(text, i, "expected a shorter number, found a huge one") from None
            if value in (float("inf"), float("-inf")):
                raise _error(text, i, f"expected a finite number, found '{raw}'")
        elif kind == "str":
            value = raw[1:-1].replace(raw[0] * 2, raw[0])
        elif kind == "bq":
            value = raw[1:-1]
        if kind != "space":
            tokens.append(_Token(raw if kind == "punct" else kind, raw, i, value))
        i += len(raw)
    tokens.append(_Token("end", "", len(text)))
    return tokens


_N = TypeVar("_N", bound=Node)


class _Parser:
    """Recursive descent over the token list; ``mixed`` marks the inside of a ``(`` group."""

    def __init__(self, text: str, roots: frozenset[str], map_roots: frozenset[str]) -> None:
        self.text, self.roots, self.map_roots = text, roots, map_roots
        self.tokens = _tokenize(text)
        self.i = 0
        self.nesting = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        tok = self.tok
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def keyword(self) -> str | None:
        word = self.tok.text.lower()
        return word if self.tok.kind == "ident" and word in _KEYWORDS else None

    def fail(self, expected: str, hint: str | None = None) -> NoReturn:
        tok = self.tok
        found = "end of expression" if tok.kind == "end" else tok.text
        found = found if tok.kind in ("end", "str") else f"'{found}'"
        raise _error(self.text, tok.pos, f"expected {expected}, found {found}", hint)

    def expect(self, kind: str, expected: str) -> _Token:
        if self.tok.kind != kind:
            self.fail(expected)
        return self.advance()

    def nested(self, parse: Callable[[], _N]) -> _N:
        """Bound the recursion, so deep nesting is an InvalidInput, not a RecursionError."""
        self.nesting += 1
        if self.nesting > _MAX_NESTING:  # reported at the opener just consumed
            limit = f"at most {_MAX_NESTING} nested parentheses, 'not's and minus signs"
            raise _error(self.text, self.tokens[self.i - 1].pos, f"expected {limit}, found more")
        node = parse()
        self.nesting -= 1
        return node

    def parse(self) -> Expr:
        node = self.condition(self.or_(mixed=False))
        if self.tok.kind != "end":
            self.fail("'and', 'or' or end of expression")
        return node

    def condition(self, node: Node) -> Expr:
        """A bare value is only allowed inside a group that turns out to be arithmetic."""
        if not isinstance(node, Expr):
            self.fail(_OPERATORS)
        return node

    def or_(self, mixed: bool) -> Node:
        return self.chain("or", Or, self.and_, mixed)

    def and_(self, mixed: bool) -> Node:
        return self.chain("and", And, self.not_, mixed)

    def chain(
        self, word: str, node: type[And | Or], operand: Callable[[bool], Node], mixed: bool
    ) -> Node:
        first = operand(mixed)
        if self.keyword() != word:
            return first
        operands = [self.condition(first)]
        while self.keyword() == word:
            self.advance()
            operands.append(self.condition(operand(False)))
        return node(tuple(operands))

    def not_(self, mixed: bool) -> Node:
        if self.keyword() != "not":
            return self.atom(mixed)
        self.advance()
        return Not(self.nested(lambda: self.condition(self.not_(False))))

    def atom(self, mixed: bool) -> Node:
        tok, word = self.tok, self.keyword()
        if tok.kind == "(":
            self.advance()
            inner = self.nested(lambda: self.or_(True))  # a condition or a sum: see what it holds
            self.expect(")", f"{_OPERATORS} or ')'" if isinstance(inner, Value) else "')'")
            if isinstance(inner, Value):
                return self.comparison(self.sum_rest(self.term_rest(inner)), mixed)
            return inner
        if word in ("true", "false"):
            self.advance()
            return Const(word == "true")
        if word == "has":
            self.advance()
            self.expect("(", "'(' after 'has'")
            field = self.field(self.roots)
            self.expect(")", "')' after the field")
            return Has(field)
        if tok.kind in ("num", "str", "-") or (tok.kind == "ident" and word is None):
            return self.comparison(self.sum_(None), mixed)
        self.fail("a condition: a comparison, has(...), true, false or '('")

    def comparison(self, left: Value, mixed: bool) -> Node:
        tok, word = self.tok, self.keyword()
        if tok.kind == "op":
            self.advance()
            return Compare(_COMPARE[tok.text], left, self.sum_(tok.text))
        if word == "in":
            self.advance()
            self.expect("(", "'(' after 'in'")
            options = [self.literal()]
            while self.tok.kind == ",":
                self.advance()
                options.append(self.literal())
            self.expect(")", "',' or ')'")
            return In(left, tuple(options))
        if word == "like":
            self.advance()
            pattern = self.expect("str", "a quoted pattern after 'like'")
            if len(pattern.value) > MAX_LIKE_PATTERN:
                raise _error(self.text, pattern.pos,
                             f"expected a pattern of at most {MAX_LIKE_PATTERN} characters, "
                             f"found one of {len(pattern.value)}",
                             hint="match a shorter, distinctive part: 'like' is a whole-"
                                  "string match, so wrap it in '%' (e.g. '%part%')")
            return Like(left, pattern.value)
        if mixed:
            return left
        self.fail(_OPERATORS)

    def sum_(self, after: str | None) -> Value:
        return self.sum_rest(self.term_rest(self.unary(after)))

    def sum_rest(self, left: Value) -> Value:
        while self.tok.kind in ("+", "-"):
            op = self.advance().text
            left = Arith(op, left, self.term_rest(self.unary(op)))
        return left

    def term_rest(self, left: Value) -> Value:
        while self.tok.kind in ("*", "/"):
            op = self.advance().text
            left = Arith(op, left, self.unary(op))
        return left

    def unary(self, after: str | None) -> Value:
        tok = self.tok
        if tok.kind == "-":
            self.advance()
            if self.tok.kind == "num":  # fold: `-1` is a literal, so `in (-1, 2)` works
                return Literal(-self.advance().value)
            return Neg(self.nested(lambda: self.unary("-")))
        if tok.kind in ("num", "str"):
            return Literal(self.advance().value)
        if tok.kind == "ident" and self.keyword() is None:
            return self.field(self.roots)
        if tok.kind == "(":
            self.advance()
            inner = self.nested(lambda: self.sum_(None))
            self.expect(")", "an arithmetic operator or ')'")
            return inner
        self.fail(f"a value after '{after}'" if after else "a value")

    def literal(self) -> Literal:
        negative = self.tok.kind == "-"
        if negative:
            self.advance()
        if self.tok.kind == "num" or (self.tok.kind == "str" and not negative):
            value = self.advance().value
            return Literal(-value if negative else value)
        self.fail("a number" if negative else "a number or a quoted string")

    def field(self, roots: frozenset[str]) -> Field:
        tok = self.tok
        if tok.kind != "ident" or self.keyword() is not None:
            self.fail("a field name")
        if tok.text not in roots:
            close = difflib.get_close_matches(tok.text, roots, n=1)
            self.fail(f"a field (one of {', '.join(sorted(roots))})",
                      hint=f"did you mean '{close[0]}'?" if close else None)  # fmt: skip
        root = self.advance().text
        if root == PRODUCTION:
            self.expect(".", "'.' and a version field after 'production'")
            return Field((root, *self.field(roots - {PRODUCTION}).path))
        if root in self.map_roots:
            self.expect(".", f"'.' and a key after '{root}'")
            if self.tok.kind not in ("ident", "bq") or self.tok.text == "``":
                self.fail(f"a key after '{root}.'")
            key = self.advance()
            if self.tok.kind == ".":
                self.fail(f"one key after '{root}' (quote a dotted key: {root}.`a.b`)")
            return Field((root, key.text if key.kind == "ident" else key.value))
        if self.tok.kind == ".":
            self.fail(f"an operator after '{root}', which has no keys")
        return Field((root,))


def _depth(node: Node) -> int:
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in current.children())
    return deepest


def parse(
    text: str, roots: Collection[str] = VERSION_ROOTS, map_roots: Collection[str] = MAP_ROOTS
) -> Expr:
    """Parse ``text`` into a tree; ``map_roots`` are the roots that take exactly one key.

    Raises :class:`~modelyard.errors.InvalidInput` with ``position`` (1-based column) and
    ``expression`` in its details.
    """
    expr = _Parser(text, frozenset(roots), frozenset(map_roots)).parse()
    if _depth(expr) > _MAX_DEPTH:
        raise _error(text, 0, f"expected at most {_MAX_DEPTH} levels of operations, found more")
    return expr


# --- canonical text ------------------------------------------------------------------------

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _operand(node: Value, minimum: int) -> str:
    precedence = _PRECEDENCE[node.op] if isinstance(node, Arith) else 3
    return to_text(node) if precedence >= minimum else f"({to_text(node)})"


def _group(node: Expr, kinds: tuple[type[Expr], ...]) -> str:
    return f"({to_text(node)})" if isinstance(node, kinds) else to_text(node)


def to_text(node: Node) -> str:
    """Canonical text: lower-case keywords, single quotes, fewest parentheses; parses back."""
    match node:
        case Or(operands):
            return " or ".join(_group(o, (Or,)) for o in operands)
        case And(operands):
            return " and ".join(_group(o, (And, Or)) for o in operands)
        case Not(operand):
            return "not " + _group(operand, (And, Or))
        case Const(value):
            return "true" if value else "false"
        case Has(field):
            return f"has({field.text})"
        case Compare(op, left, right):
            return f"{to_text(left)} {op} {to_text(right)}"
        case In(operand, options):
            return f"{to_text(operand)} in ({', '.join(to_text(o) for o in options)})"
        case Like(operand, pattern):
            return f"{to_text(operand)} like {_quote(pattern)}"
        case Field():
            return node.text
        case Literal(value):
            return _quote(value) if isinstance(value, str) else repr(value)
        case Neg(operand):  # `-(1)` keeps a negated literal apart from the literal -1
            bare = isinstance(operand, Field | Neg) or (
                isinstance(operand, Literal) and isinstance(operand.value, str)
            )
            return "-" + (to_text(operand) if bare else f"({to_text(operand)})")
        case Arith(op, left, right):
            return f"{_operand(left, _PRECEDENCE[op])} {op} {_operand(right, _PRECEDENCE[op] + 1)}"
    raise TypeError(f"not an expression node: {node!r}")


def equality_constraints(expr: Expr) -> dict[str, Any]:
    """``field = literal`` members of the top-level ``and`` chain, for pushing down to SQL.

    They are necessary conditions only: callers still evaluate the whole expression on the
    rows they get back. ``production.*`` fields are left out (they pass when there is none).
    """
    constraints: dict[str, Any] = {}
    stack: list[Expr] = [expr]
    while stack:
        member = stack.pop(0)
        if isinstance(member, And):
            stack[:0] = member.operands
        elif isinstance(member, Compare) and member.op == "=":
            left, right = member.left, member.right
            field, literal = (left, right) if isinstance(left, Field) else (right, left)
            pushable = isinstance(field, Field) and field.path[0] != PRODUCTION
            if pushable and isinstance(literal, Literal):
                constraints.setdefault(to_text(field), literal.value)
    return constraints
