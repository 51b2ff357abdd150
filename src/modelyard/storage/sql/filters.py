"""The filter language compiled to SQL over ``version_values``, with its meaning unchanged.

Each condition compiles to two SQL predicates on a version row: ``sure`` (it certainly
matches) and ``maybe`` (it may match; a superset). Where SQL says exactly what
``domain.expression_eval`` says, the two are one expression. Where it cannot, ``sure`` is
false and ``maybe`` true, and the caller evaluates the expression in Python on the rows
``maybe`` lets through and ``sure`` did not settle. ``not`` swaps the two, so a part SQL
cannot decide never decides a row wrongly. A condition built from index lookups also
bounds its versions (``candidates``: the ids those lookups find, intersected under
``and``, united under ``or``), and a search starts from that set.

Left to Python: ``like`` (SQLite's LIKE ignores ASCII case), arithmetic, field against
field, ``production.*``, ``datasets``, ``run_id``, ``created_at``, ``name``, ``digest``,
``description`` and ``created_by`` against a number (their text may read as one), literal
numbers a double cannot hold exactly, strings with a NUL byte, and rows whose own value is
a number a double cannot hold (``approx``). Every predicate is true or false, never NULL,
so SQL's three-valued logic cannot leak into ``not``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Double,
    Select,
    and_,
    false,
    intersect,
    literal,
    not_,
    or_,
    select,
    true,
    union,
)

from modelyard.domain.expression_eval import as_number, evaluate
from modelyard.domain.expressions import (
    MAP_ROOTS,
    And,
    Compare,
    Const,
    Expr,
    Field,
    Has,
    In,
    Literal,
    Not,
    Or,
)
from modelyard.storage.sql.schema import TEXT_PREFIX, aliases, model_versions, models
from modelyard.storage.sql.schema import version_values as vv

Predicate = ColumnElement[bool]
Ids = Select[tuple[int]]  # one column, version_id
_FLIP = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_EXACT_INT = 2**53  # every integer up to this is a double exactly
_STRING_COLUMNS = {"name": models.c.name, "stage": model_versions.c.stage,
                   "description": model_versions.c.description,
                   "digest": model_versions.c.digest, "created_by": model_versions.c.created_by}
_NON_NUMERIC = frozenset({"stage"})  # string columns whose values never read as numbers


# --- what a version stores ----------------------------------------------------------------


def value_rows(version_id: int, params: dict[str, Any], metrics: dict[str, Any],
               tags: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``version_values`` rows of one version: a missing (``None``) value has none."""
    rows = []
    for field, values in (("params", params), ("metrics", metrics), ("tags", tags)):
        for key, value in values.items():
            if value is not None:
                rows.append({"version_id": version_id, "field": field, "key": key,
                             **_stored(value)})
    return rows


def _stored(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"kind": "b", "text": None, "text_prefix": None, "num": None, "approx": False}
    text = value if isinstance(value, str) else None
    num, approx = _double(as_number(value))
    return {"kind": "s" if text is not None else "n", "text": text,
            "text_prefix": None if text is None else text[:TEXT_PREFIX], "num": num,
            "approx": approx}


def _double(number: int | float | None) -> tuple[float | None, bool]:
    """(the double that is exactly ``number``, or None; whether one could not be)."""
    if number is None or (isinstance(number, float) and math.isnan(number)):
        return None, False  # NaN compares unequal to everything, as a missing number does
    if isinstance(number, float):
        return number, False
    return (float(number), False) if abs(number) <= _EXACT_INT else (None, True)


# --- conditions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """``candidates``, when known, selects (as ``version_id``) a superset of the versions
    ``maybe`` lets through, from indexes alone: a search starts from it rather than
    probing every version (None: any version may match)."""

    sure: Predicate
    maybe: Predicate
    candidates: Ids | None = None

    @property
    def exact(self) -> bool:
        return self.sure is self.maybe


def _exact(predicate: Predicate, candidates: Ids | None = None) -> Condition:
    return Condition(predicate, predicate, candidates)


def _combined(sets: list[Ids], combine: Callable[..., CompoundSelect[Any]]) -> Ids:
    """One id set from several (SQLite cannot nest a compound select unwrapped)."""
    if len(sets) == 1:
        return sets[0]
    return select(combine(*sets).subquery().c.version_id)


UNKNOWN = Condition(false(), true())
_TRUE, _FALSE = _exact(true()), _exact(false())


def compile_filter(expr: Expr, dialect: str) -> Condition:
    """``expr`` as predicates over ``model_versions`` joined to ``models``."""
    return _Compiler(dialect).condition(expr)


class _Compiler:
    def __init__(self, dialect: str) -> None:
        self.postgresql = dialect == "postgresql"

    def condition(self, node: Expr) -> Condition:
        match node:
            case Const(value):
                return _TRUE if value else _FALSE
            case Not(operand):
                inner = self.condition(operand)
                return (_exact(not_(inner.sure)) if inner.exact
                        else Condition(not_(inner.maybe), not_(inner.sure)))
            case And(operands) | Or(operands):
                parts = [self.condition(o) for o in operands]
                sets = [p.candidates for p in parts if p.candidates is not None]
                join: Callable[..., Predicate]
                if isinstance(node, And):  # every part holds: any part's set bounds it
                    join, candidates = and_, _combined(sets, intersect) if sets else None
                else:  # some part holds: bounded only if every part is
                    join = or_
                    candidates = _combined(sets, union) if len(sets) == len(parts) else None
                if all(p.exact for p in parts):
                    return _exact(join(*(p.sure for p in parts)), candidates)
                return Condition(join(*(p.sure for p in parts)), join(*(p.maybe for p in parts)),
                                 candidates)
            case In(operand, options):
                return self.condition(Or(tuple(Compare("=", operand, o) for o in options)))
            case Has(field):
                return self.has(field)
            case Compare(op, left, right):
                if isinstance(left, Literal) and isinstance(right, Literal):
                    return _TRUE if evaluate(node, {}).passed else _FALSE
                if isinstance(left, Literal) and isinstance(right, Field):
                    op, left, right = _FLIP[op], right, left
                if isinstance(left, Field) and isinstance(right, Literal):
                    return self.compare(left, op, right.value)
        return UNKNOWN  # like, arithmetic, field against field

    def has(self, field: Field) -> Condition:
        root = field.path[0]
        if root in MAP_ROOTS:  # any value but the empty string (only strings have a prefix)
            return _value_in(root, field.path[1], or_(vv.c.text_prefix.is_(None),
                                                      vv.c.text_prefix != ""))
        if root == "aliases":
            return _in(select(aliases.c.version_id).distinct())
        if root == "description":
            return _exact(model_versions.c.description != "")
        return _TRUE if root in ("name", "version", "stage", "digest") else UNKNOWN

    def compare(self, field: Field, op: str, value: int | float | str) -> Condition:
        root = field.path[0]
        if isinstance(value, str) and "\x00" in value:
            return UNKNOWN  # PostgreSQL refuses the byte; no stored value holds it there
        if root in MAP_ROOTS:
            return self.map_compare(root, field.path[1], op, value)
        if root == "version":
            number = as_number(value)
            if number is None:  # a string that is no number: only != holds
                return _TRUE if op == "!=" else _FALSE
            double, approx = _double(number)
            return UNKNOWN if approx or double is None else _exact(  # a double: no overflow
                _order(op, model_versions.c.version, literal(double, Double())))
        if root in _STRING_COLUMNS:
            if isinstance(value, str):
                return _exact(self.text(op, _STRING_COLUMNS[root], value))
            if root in _NON_NUMERIC:
                return _TRUE if op == "!=" else _FALSE
            return UNKNOWN
        if root == "aliases":  # membership; aliases never read as numbers
            if op not in ("=", "!="):
                return _FALSE
            if not isinstance(value, str):
                return _TRUE if op == "!=" else _FALSE
            member = _in(select(aliases.c.version_id).where(aliases.c.alias == value))
            return member if op == "=" else _exact(not_(member.sure))
        return UNKNOWN

    def map_compare(self, field: str, key: str, op: str, literal: int | float | str) -> Condition:
        """A param, metric or tag against a literal; ``!=`` is "present and not equal".

        Each way a stored value can match is its own index lookup. Rows holding a number a
        double cannot hold (``approx``) may match too: while the key has any, ``sure`` is
        false and Python decides those rows (an uncorrelated test, evaluated once).
        """
        if "\x00" in key:
            return UNKNOWN
        branches = self.matches(op if op != "!=" else "=", literal)
        if branches is None:
            return UNKNOWN
        ways = [_value_in(field, key, b) for b in branches]
        approx = _value_in(field, key, vv.c.approx)
        found = or_(*(w.sure for w in ways))
        sure = and_(found, ~_values(field, key, vv.c.approx).exists())
        maybe = or_(found, approx.sure)
        if op == "!=":
            present = _value_in(field, key)
            return Condition(and_(present.sure, not_(maybe)), and_(present.sure, not_(sure)),
                             present.candidates)
        candidates = [w.candidates for w in (*ways, approx) if w.candidates is not None]
        return Condition(sure, maybe, _combined(candidates, union))

    def matches(self, op: str, literal: int | float | str) -> list[Predicate] | None:
        """The ways a stored value certainly satisfies ``value op literal`` (None: SQL can't
        say): by its text, and by its numeric reading (a string's only against a number)."""
        if isinstance(literal, str):
            text = and_(vv.c.kind == "s", self.text(op, vv.c.text, literal))
            if op == "=":  # a prefix shorter than the index's is the whole string
                text = (vv.c.text_prefix == literal if len(literal) < TEXT_PREFIX
                        else and_(vv.c.text_prefix == literal[:TEXT_PREFIX], text))
            number = as_number(literal)
            if number is None:
                return [text]
            double, approx = _double(number)
            if approx or double is None:
                return None
            return [text, and_(vv.c.kind == "n", _order(op, vv.c.num, double))]
        double, approx = _double(literal)
        if approx or double is None:
            return None
        return [_order(op, vv.c.num, double)]  # strings count by their numeric reading

    def text(self, op: str, column: Any, literal: str) -> Predicate:
        """Code-point order, as Python's: PostgreSQL's default collation may not be."""
        if op != "=" and op != "!=" and self.postgresql:
            column = column.collate("C")
        return _order(op, column, literal)


def _order(op: str, column: Any, value: Any) -> Predicate:
    result: Predicate = {"=": column == value, "!=": column != value, "<": column < value,
                         "<=": column <= value, ">": column > value, ">=": column >= value}[op]
    return result


def _values(field: str, key: str, *where: Any) -> Ids:
    """The versions with a value at ``field.key`` (satisfying ``where``): an index lookup."""
    return select(vv.c.version_id).where(vv.c.field == field, vv.c.key == key, *where)


def _value_in(field: str, key: str, *where: Any) -> Condition:
    return _in(_values(field, key, *where))


def _in(ids: Ids) -> Condition:
    """The version is one of ``ids`` (each selected once), which bound the search too."""
    return _exact(model_versions.c.id.in_(ids), ids)
