"""The filter language compiled to SQL over ``version_values``, with its meaning unchanged.

Each condition compiles to two SQL predicates on a version row: ``sure`` (it certainly
matches) and ``maybe`` (it may match; a superset). Where SQL says exactly what
``domain.expression_eval`` says, the two are one expression. Where it cannot, ``sure`` is
false and ``maybe`` true, and the caller evaluates the expression in Python on the rows
``maybe`` lets through and ``sure`` did not settle. ``not`` swaps the two, so a part SQL
cannot decide never decides a row wrongly.

Left to Python: ``like`` (SQLite's LIKE ignores ASCII case), arithmetic, field against
field, ``production.*``, ``datasets``, ``run_id``, ``created_at``, ``name``, ``digest``,
``description`` and ``created_by`` against a number (their text may read as one), literal
numbers a double cannot hold exactly, strings with a NUL byte, and rows whose own value is
a number a double cannot hold (``approx``). Every predicate is true or false, never NULL,
so SQL's three-valued logic cannot leak into ``not``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Double, and_, false, literal, not_, or_, select, true

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
    sure: Predicate
    maybe: Predicate

    @property
    def exact(self) -> bool:
        return self.sure is self.maybe


def _exact(predicate: Predicate) -> Condition:
    return Condition(predicate, predicate)


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
                join = and_ if isinstance(node, And) else or_
                parts = [self.condition(o) for o in operands]
                if all(p.exact for p in parts):
                    return _exact(join(*(p.sure for p in parts)))
                return Condition(join(*(p.sure for p in parts)), join(*(p.maybe for p in parts)))
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
        if root in MAP_ROOTS:
            return _exact(_with_value(root, field.path[1], or_(vv.c.kind != "s", vv.c.text != "")))
        if root == "aliases":
            return _exact(model_versions.c.id.in_(select(aliases.c.version_id)))
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
            member = (model_versions.c.id.in_(select(aliases.c.version_id).where(
                aliases.c.alias == value)) if isinstance(value, str) else false())
            return _exact({"=": member, "!=": not_(member)}.get(op, false()))
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
        found = or_(*(_with_value(field, key, b) for b in branches))
        approx = _with_value(field, key, vv.c.approx)
        sure = and_(found, ~select(vv.c.version_id).where(
            vv.c.field == field, vv.c.key == key, vv.c.approx).exists())
        maybe = or_(found, approx)
        if op == "!=":
            present = _with_value(field, key)
            sure, maybe = and_(present, not_(maybe)), and_(present, not_(sure))
        return Condition(sure, maybe)

    def matches(self, op: str, literal: int | float | str) -> list[Predicate] | None:
        """The ways a stored value certainly satisfies ``value op literal`` (None: SQL can't
        say): by its text, and by its numeric reading (a string's only against a number)."""
        if isinstance(literal, str):
            text = and_(vv.c.kind == "s", self.text(op, vv.c.text, literal))
            if op == "=":
                text = and_(vv.c.text_prefix == literal[:TEXT_PREFIX], text)
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


def _with_value(field: str, key: str, *where: Any) -> Predicate:
    """The version has a value at ``field.key`` (satisfying ``where``): an index lookup."""
    return model_versions.c.id.in_(select(vv.c.version_id).where(
        vv.c.field == field, vv.c.key == key, *where))
