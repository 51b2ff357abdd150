"""The search/filter/gate expression language: parsing, canonical text, evaluation."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.domain.expression_eval import Evaluation, evaluate
from modelyard.domain.expressions import (
    MAP_ROOTS,
    VERSION_ROOTS,
    And,
    Arith,
    Compare,
    Const,
    Expr,
    Field,
    Has,
    In,
    Like,
    Literal,
    Neg,
    Not,
    Or,
    Value,
    equality_constraints,
    parse,
    to_text,
)
from modelyard.errors import InvalidInput

RUN_ROOTS = frozenset(
    {"run_id", "name", "status", "experiment", "user", "params", "metrics", "tags"}
)

PRODUCTION = {
    "name": "fraud",
    "version": 2,
    "stage": "production",
    "params": {"lr": 0.2},
    "metrics": {"auc": 0.905},
    "tags": {"team": "risk"},
}
CTX: dict[str, Any] = {
    "name": "fraud",
    "version": 3,
    "stage": "staging",
    "description": "gradient boosted trees",
    "digest": "blake3:" + "ab" * 32,
    "created_by": "ana",
    "created_at": "2024-05-01T10:00:00Z",
    "aliases": ["champion"],
    "datasets": [{"name": "train", "digest": "blake3:" + "cd" * 32}],
    "params": {"lr": 0.1, "max_depth": "12", "loss": "log"},
    "metrics": {"auc": 0.91, "f1": 0.8},
    "tags": {"team": "risk", "my.key": "v"},
    "run_id": "r1",
    "production": PRODUCTION,
}


def f(*path: str) -> Field:
    return Field(path)


def lit(value: int | float | str) -> Literal:
    return Literal(value)


def passes(text: str, ctx: dict[str, Any] | None = None) -> bool:
    return evaluate(parse(text), CTX if ctx is None else ctx).passed


def with_(**changes: Any) -> dict[str, Any]:
    ctx = copy.deepcopy(CTX)
    ctx.update(changes)
    return ctx


def error_of(text: str, **kwargs: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        parse(text, **kwargs)
    return info.value


# --- the examples callers rely on ------------------------------------------------------------


def test_search_example_parses_evaluates_and_records_evidence() -> None:
    expr = parse("name = 'fraud' and metrics.auc >= 0.9 and tags.team = 'risk'")
    assert expr == And(
        (
            Compare("=", f("name"), lit("fraud")),
            Compare(">=", f("metrics", "auc"), lit(0.9)),
            Compare("=", f("tags", "team"), lit("risk")),
        )
    )
    assert evaluate(expr, CTX) == Evaluation(
        True, {"name": "fraud", "metrics.auc": 0.91, "tags.team": "risk"}
    )
    assert not passes("name = 'fraud' and metrics.auc >= 0.95 and tags.team = 'risk'")


def test_no_regression_gate_against_production() -> None:
    gate = parse("metrics.auc >= production.metrics.auc - 0.01")
    assert gate == Compare(
        ">=", f("metrics", "auc"), Arith("-", f("production", "metrics", "auc"), lit(0.01))
    )
    assert gate.fields() == {"metrics.auc", "production.metrics.auc"}
    assert evaluate(gate, CTX).passed  # 0.91 >= 0.895
    worse = with_(production={**PRODUCTION, "metrics": {"auc": 0.95}})
    assert evaluate(gate, worse) == Evaluation(
        False, {"metrics.auc": 0.91, "production.metrics.auc": 0.95}
    )


def test_production_comparisons_pass_when_there_is_no_production() -> None:
    none = with_(production=None)
    gate = parse("metrics.auc >= production.metrics.auc - 0.01")
    assert evaluate(gate, none) == Evaluation(
        True, {"metrics.auc": 0.91, "production.metrics.auc": None}
    )
    missing = {k: v for k, v in CTX.items() if k != "production"}
    assert evaluate(gate, missing).passed
    assert passes("production.version in (7) and production.name like 'x%'", none)
    # Only comparisons get the benefit of the doubt: has() and negations do not.
    assert not passes("has(production.version)", none)
    assert not passes("not metrics.auc < production.metrics.auc", none)
    # With a production version, a missing production field is an ordinary missing field.
    assert not passes("metrics.auc > production.metrics.precision", CTX)


def test_has() -> None:
    assert passes("has(description)")
    assert not passes("has(description)", with_(description=""))
    assert not passes("has(description)", with_(description=None))
    assert not passes("has(description)", {"name": "x"})
    assert passes("has(aliases)")
    assert not passes("has(aliases)", with_(aliases=[]))
    assert passes("has(tags.team)") and not passes("has(tags.owner)")
    assert passes("has(version)", with_(version=0))  # zero is a value, not an absence


def test_negated_disjunction_example() -> None:
    expr = parse("not (tags.x = 'y' or params.max_depth > 12)")
    assert expr == Not(
        Or(
            (
                Compare("=", f("tags", "x"), lit("y")),
                Compare(">", f("params", "max_depth"), lit(12)),
            )
        )
    )
    assert evaluate(expr, CTX).passed  # "12" > 12 is false, tags.x is missing
    assert not evaluate(expr, with_(params={"max_depth": "13"})).passed
    assert not evaluate(expr, with_(tags={"x": "y"})).passed


# --- syntax ------------------------------------------------------------------------------------


def test_precedence_not_binds_tighter_than_and_than_or() -> None:
    a, b, c = (Compare("=", f("version"), lit(n)) for n in (1, 2, 3))
    assert parse("version = 1 or version = 2 and not version = 3") == Or((a, And((b, Not(c)))))
    assert parse("not version = 1 and version = 2") == And((Not(a), b))
    assert passes("true or false and false")  # (true or false) and false would be false
    assert not passes("not false and false")  # not (false and false) would be true
    assert passes("NOT false AnD TRUE Or false")  # keywords are case-insensitive


def test_parentheses_group_either_conditions_or_sums() -> None:
    auc = f("metrics", "auc")
    assert parse("(metrics.auc + 0.1) > 1") == Compare(">", Arith("+", auc, lit(0.1)), lit(1))
    assert parse("((metrics.auc)) * 2 > 1.8") == Compare(">", Arith("*", auc, lit(2)), lit(1.8))
    assert parse("(name = 'a' or name = 'fraud') and version = 3") == And(
        (
            Or((Compare("=", f("name"), lit("a")), Compare("=", f("name"), lit("fraud")))),
            Compare("=", f("version"), lit(3)),
        )
    )
    assert passes("(metrics.auc > 0.5 and ((version + 1) * 2 = 8))")
    assert passes("((version) = 3)")
    assert passes("(((true)))")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version * 2 + 1 = 7", True),
        ("version + 2 * 3 = 9", True),
        ("(version + 2) * 3 = 15", True),
        ("version - 1 - 1 = 1", True),  # left-associative
        ("12 / 2 / 3 = 2", True),
        ("-version = -3", True),
        ("- -version = 3", True),
        ("-(version - 4) = 1", True),
        ("params.max_depth * 2 = 24", True),  # a numeric string is a number in arithmetic
        ("version / 0 = 1", False),  # division by zero is missing ...
        ("version / 0 != 1", False),  # ... so every comparison with it is false
        ("name + 1 = 1", False),
        ("-name = 'fraud'", False),
    ],
)
def test_arithmetic(text: str, expected: bool) -> None:
    assert passes(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version = 3", True),
        ("version == 3", True),
        ("version = 4", False),
        ("version != 3", False),
        ("version <> 4", True),
        ("version < 4", True),
        ("version < 3", False),
        ("version <= 3", True),
        ("version <= 2", False),
        ("version > 2", True),
        ("version > 3", False),
        ("version >= 3", True),
        ("version >= 4", False),
        ("name < 'fraue'", True),  # strings order as strings
        ("name >= 'g'", False),
    ],
)
def test_every_comparison_operator(text: str, expected: bool) -> None:
    assert passes(text) is expected


def test_operators_are_normalized() -> None:
    assert parse("version == 3") == parse("version = 3")
    assert parse("version <> 3") == Compare("!=", f("version"), lit(3))


def test_strings_and_numbers() -> None:
    assert parse("description = 'it''s'") == Compare("=", f("description"), lit("it's"))
    assert parse('description = "say ""hi"" \'now\'"').right == lit("say \"hi\" 'now'")  # type: ignore[attr-defined]
    assert str(parse('description = "it\'s"')) == "description = 'it''s'"
    assert passes("description = 'gradient boosted trees'")
    numbers = parse("version in (1, 2.5, .5, 2., 1e3, 1.5E-2, -4)")
    assert isinstance(numbers, In)
    assert [o.value for o in numbers.options] == [1, 2.5, 0.5, 2.0, 1000.0, 0.015, -4]
    assert [type(o.value) for o in numbers.options][:2] == [int, float]


def test_missing_fields_make_comparisons_false() -> None:
    assert not passes("metrics.precision > 0")
    assert not passes("metrics.precision < 0")
    assert not passes("metrics.precision != 1")
    assert not passes("tags.owner = 'x'")
    assert not passes("run_id = 'r1'", {"name": "x"})
    assert not passes("metrics.auc > 0", with_(metrics="not a mapping"))
    assert evaluate(parse("tags.owner = 'x'"), CTX).values == {"tags.owner": None}


def test_numeric_strings_and_mixed_types() -> None:
    assert passes("params.max_depth = 12")
    assert passes("params.max_depth > 9")  # numerically; as strings "12" > "9" is false
    assert not passes("params.max_depth > '9'")  # two strings compare as strings
    assert not passes("params.loss = 1")
    assert passes("params.loss != 1")
    assert not passes("params.loss < 1")
    assert not passes("params.loss >= 1")
    assert not passes("tags.flag = 1", with_(tags={"flag": True}))  # booleans are not numbers


def test_list_fields_mean_membership() -> None:
    assert passes("aliases = 'champion'")
    assert passes("'champion' = aliases")
    assert not passes("aliases = 'challenger'")
    assert not passes("aliases != 'champion'")
    assert passes("aliases != 'challenger'")
    assert not passes("aliases > 'a'")
    assert passes("aliases in ('x', 'champion')")
    assert not passes("aliases in ('x', 'y')")
    assert passes("datasets = 'train'")  # a dataset reference matches on its name ...
    assert passes("datasets = 'blake3:" + "cd" * 32 + "'")  # ... or its digest
    assert not passes("datasets = 'test'")
    assert not passes("aliases = 'champion'", with_(aliases=[]))


def test_like() -> None:
    assert passes("name like 'fr%'")
    assert passes("name like 'fr_ud'")
    assert passes("name like '%'")
    assert passes("description like '%boost%'")
    assert passes("tags.team like 'r_s_'")
    assert not passes("name like 'FR%'")  # case-sensitive
    assert not passes("name like 'fr'")  # whole string
    assert not passes("name like 'fr_d'")
    assert not passes("version like '3'")  # strings only
    assert passes("aliases like 'champ%'")
    assert passes("description like 'a.b%'", with_(description="a.b*c"))  # no regex meaning
    assert not passes("description like 'a.b%'", with_(description="axb"))
    slow_for_regex = "name like '" + "%a" * 12 + "%b'"
    assert not passes(slow_for_regex, with_(name="a" * 200))


def test_in() -> None:
    assert parse("version in (1, -2, 'x')") == In(f("version"), (lit(1), lit(-2), lit("x")))
    assert passes("version in (1, 2, 3)")
    assert not passes("version in (-1, 4)")
    assert passes("name in ('a', 'fraud')")
    assert passes("params.max_depth in (12)")
    assert not passes("tags.owner in ('x')")


def test_backquoted_keys_and_field_paths() -> None:
    expr = parse("tags.`my.key` = 'v' and params.`odd key!` = 1 and tags.my-key = 'x'")
    assert isinstance(expr, And)
    assert [c.left for c in expr.operands] == [  # type: ignore[attr-defined]
        f("tags", "my.key"),
        f("params", "odd key!"),
        f("tags", "my-key"),
    ]
    assert expr.fields() == {"tags.`my.key`", "params.`odd key!`", "tags.my-key"}
    assert evaluate(parse("tags.`my.key` = 'v'"), CTX).passed
    assert parse("production.tags.`a.b` = 1").fields() == {"production.tags.`a.b`"}
    assert parse("tags.and = 1") == Compare("=", f("tags", "and"), lit(1))


def test_canonical_text() -> None:
    text = "name = \"x\" AND (version + 1) * 2 >= -3 OR NOT (tags.a == 'b' Or TRUE)"
    canonical = "name = 'x' and (version + 1) * 2 >= -3 or not (tags.a = 'b' or true)"
    assert str(parse(text)) == canonical
    assert to_text(parse("version - (1 - 2) = 1 - 2 - 3")) == "version - (1 - 2) = 1 - 2 - 3"
    assert to_text(parse("-(1) = -1")) == "-(1) = -1"
    assert parse("-(1) = -1") == Compare("=", Neg(lit(1)), lit(-1))


# --- errors ------------------------------------------------------------------------------------


def test_error_message_shows_column_expectation_and_caret() -> None:
    error = error_of("metrics.auc >= and")
    assert error.message == (
        "invalid expression at column 16: expected a value after '>=', found 'and'\n"
        "  metrics.auc >= and\n"
        "                 ^"
    )
    assert error.details == {"position": 16, "expression": "metrics.auc >= and"}


@pytest.mark.parametrize(
    ("text", "column", "expected"),
    [
        ("metrics.auc > 0.9 and", 22, "expected a condition"),
        ("name = 'fraud", 8, "expected a closing '"),
        ('name = "fraud', 8, 'expected a closing "'),
        ("tags.`team = 'x'", 6, "expected a closing `"),
        ("(name = 'x'", 12, "expected ')'"),
        ("(version + 1 > 2", 17, "expected ')'"),
        ("(version + 1", 13, "comparison operator"),
        ("version * (2 + 3 > 1", 18, "expected an arithmetic operator or ')'"),
        ("metrics = 1", 9, "expected '.' and a key after 'metrics'"),
        ("params", 7, "expected '.' and a key after 'params'"),
        ("metrics.a.b = 1", 10, "one key after 'metrics'"),
        ("metrics.`` = 1", 9, "a key after 'metrics.'"),
        ("name.first = 'x'", 5, "has no keys"),
        ("name", 5, "expected a comparison operator"),
        ("(name) and version = 1", 8, "expected a comparison operator"),
        ("name = 'x' $", 12, "found '$'"),
        ("version = 1 = 2", 13, "expected 'and', 'or' or end of expression"),
        ("version in 1", 12, "expected '(' after 'in'"),
        ("version in ()", 13, "a number or a quoted string"),
        ("version in (1 2)", 15, "expected ',' or ')'"),
        ("name like fraud", 11, "a quoted pattern after 'like'"),
        ("has name", 5, "expected '(' after 'has'"),
        ("has(metrics.auc", 16, "expected ')' after the field"),
        ("production = 1", 12, "a version field after 'production'"),
        ("production.params > 1", 19, "a key after 'params'"),
        ("version = 1e999", 11, "a finite number"),
        ("", 1, "expected a condition"),
        ("and", 1, "expected a condition"),
        ("version = true", 11, "expected a value after '='"),
        ("version = 3 -", 14, "expected a value after '-'"),
        ("(" * 60 + "true" + ")" * 60, 51, "nested"),
    ],
)
def test_error_positions(text: str, column: int, expected: str) -> None:
    error = error_of(text)
    assert error.details["position"] == column
    assert error.message.startswith(f"invalid expression at column {column}: ")
    assert expected in error.message


def test_long_chains_are_rejected_before_they_can_overflow_the_stack() -> None:
    assert passes(" + ".join(["1"] * 50) + " = 50")
    error = error_of(" + ".join(["1"] * 500) + " = 500")
    assert "levels" in error.message


def test_unknown_roots() -> None:
    error = error_of("version = 1 and metric.auc > 1")
    assert error.details["position"] == 17
    assert "found 'metric'" in error.message
    assert error.hint == "did you mean 'metrics'?"
    assert error_of("production.production.version = 1").details["position"] == 12


def test_custom_roots_for_runs() -> None:
    expr = parse("status = 'FINISHED' and metrics.loss < 0.2", roots=RUN_ROOTS)
    run = {"status": "FINISHED", "metrics": {"loss": 0.1}}
    assert evaluate(expr, run) == Evaluation(True, {"status": "FINISHED", "metrics.loss": 0.1})
    assert error_of("stage = 'x'", roots=RUN_ROOTS).details["position"] == 1
    assert "found 'production'" in error_of("production.version = 1", roots=RUN_ROOTS).message
    plain = parse("metrics = 1", roots=RUN_ROOTS, map_roots={"params"})
    assert plain == Compare("=", f("metrics"), lit(1))
    assert error_of("params = 1", roots=RUN_ROOTS, map_roots={"params"}).details["position"] == 8


# --- pushdown ----------------------------------------------------------------------------------


def test_equality_constraints_come_from_the_top_level_conjunction_only() -> None:
    expr = parse(
        "name = 'fraud' and metrics.auc >= 0.9 and 3 = version"
        " and (stage = 'production' and tags.team = 'risk')"
        " and (run_id = 'x' or run_id = 'y') and not digest = 'd'"
        " and production.name = 'p' and name = 'other' and version = created_by"
    )
    assert equality_constraints(expr) == {
        "name": "fraud",
        "version": 3,
        "stage": "production",
        "tags.team": "risk",
    }
    assert equality_constraints(parse("name = 'a' or version = 1")) == {}
    assert equality_constraints(parse("tags.`a.b` == 'x'")) == {"tags.`a.b`": "x"}
    assert equality_constraints(parse("true")) == {}


# --- properties ----------------------------------------------------------------------------

KEYS = st.sampled_from(["auc", "lr", "my.key", "odd key", "and", "a-b"]) | st.text(
    st.characters(exclude_characters="`"), min_size=1, max_size=6
)
PLAIN_FIELDS = st.sampled_from(sorted(VERSION_ROOTS - MAP_ROOTS - {"production"})).map(
    lambda root: Field((root,))
) | st.tuples(st.sampled_from(sorted(MAP_ROOTS)), KEYS).map(Field)
FIELDS = PLAIN_FIELDS | PLAIN_FIELDS.map(lambda fld: Field(("production", *fld.path)))
LITERALS = st.builds(
    Literal,
    st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
)
VALUES: st.SearchStrategy[Value] = st.recursive(
    LITERALS | FIELDS,
    lambda inner: st.builds(Neg, inner) | st.builds(Arith, st.sampled_from("+-*/"), inner, inner),
    max_leaves=6,
)
CONDITIONS: st.SearchStrategy[Expr] = st.recursive(
    st.builds(Const, st.booleans())
    | st.builds(Compare, st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), VALUES, VALUES)
    | st.builds(In, VALUES, st.lists(LITERALS, min_size=1, max_size=3).map(tuple))
    | st.builds(Like, VALUES, st.text(max_size=6))
    | st.builds(Has, FIELDS),
    lambda inner: (
        st.builds(Not, inner)
        | st.lists(inner, min_size=2, max_size=3).map(lambda xs: And(tuple(xs)))
        | st.lists(inner, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs)))
    ),
    max_leaves=8,
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=4,
)
MAPS = st.dictionaries(KEYS, JSON, max_size=4) | JSON
VERSION = st.fixed_dictionaries(
    {}, optional={root: (MAPS if root in MAP_ROOTS else JSON) for root in sorted(VERSION_ROOTS)}
)
CONTEXTS = st.builds(lambda ctx, prod: {**ctx, "production": prod}, VERSION, st.none() | VERSION)
SNIPPETS = st.sampled_from(
    [
        "metrics", ".", "auc", "`k.k`", "production", "name", "version", "tags", "aliases",
        "=", "!=", "<>", ">=", "<", "+", "-", "*", "/", "(", ")", ",", "and", "or", "not",
        "in", "like", "has", "true", "false", "'x'", "'it''s'", '"q"', "0.5", "12", "1e3", "'",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(CONDITIONS)
def test_canonical_text_round_trips(expr: Expr) -> None:
    assert parse(str(expr)) == expr
    assert to_text(expr) == str(expr)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40) | st.lists(SNIPPETS, max_size=14).map(" ".join))
def test_any_text_parses_or_raises_invalid_input(text: str) -> None:
    try:
        expr = parse(text)
    except InvalidInput as error:
        position = error.details["position"]
        assert 1 <= position <= len(text) + 1
        assert error.message.startswith(f"invalid expression at column {position}: expected ")
        assert error.details["expression"] == text
    else:
        assert parse(str(expr)) == expr


@settings(max_examples=200, deadline=None)
@given(CONDITIONS, CONTEXTS)
def test_evaluate_never_raises(expr: Expr, ctx: dict[str, Any]) -> None:
    result = evaluate(expr, ctx)
    assert isinstance(result.passed, bool)
    assert set(result.values) == expr.fields()
