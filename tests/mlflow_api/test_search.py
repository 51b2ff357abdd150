"""MLflow's filter grammar, orderings and keyset pages, without a server."""

from __future__ import annotations

import pytest

from modelyard.errors import InvalidInput
from modelyard.server.mlflow.search import Fields, page, parse_filter, parse_order

MODEL = Fields({"name": "fraud-v2", "version_number": 3},
               tags={"team": "risk", "a.b": "x"}, params={"C": "10"},
               metrics={"auc": 0.9})
KINDS = ("attribute", "tag", "param", "metric")


@pytest.mark.parametrize(("text", "matches"), [
    ("", True),
    ("name = 'fraud-v2'", True),
    ('name = "fraud-v2"', True),
    ("name != 'fraud-v2'", False),
    ("name LIKE 'fraud%'", True),
    ("name LIKE 'FRAUD%'", False),
    ("name ILIKE 'FRAUD%'", True),
    ("name LIKE 'fraud-v_'", True),
    ("name IN ('a', 'fraud-v2')", True),
    ("name NOT IN ('a', 'fraud-v2')", False),
    ("tags.team = 'risk' and tag.`a.b` = 'x'", True),
    ("tags.\"a.b\" = 'x'", True),
    ("tags.missing != 'true'", True),  # what the client appends to every model search
    ("tags.missing = 'true'", False),
    ("tags.missing IS NULL", True),
    ("tags.team IS NOT NULL", True),
    ("version_number >= 3 AND version_number < 4", True),
    ("version_number > 3", False),
    ("params.C > 9", True),  # a param that reads as a number compares as one
    ("metrics.auc <= 0.9", True),
    ("metrics.missing < 1", False),
])
def test_filters_match_as_mlflow_documents(text: str, matches: bool) -> None:
    assert parse_filter(text, ["name", "version_number"], KINDS).matches(MODEL) is matches


@pytest.mark.parametrize("text", [
    "name = 'a' OR name = 'b'", "name =", "= 'a'", "name ~ 'a'", "owner = 'x'",
    "name IN ()", "name = 'a' AND", "tags. = 'a'", "name = 'unclosed",
])
def test_malformed_filters_are_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_filter(text, ["name", "version_number"], KINDS)


def test_a_search_refuses_kinds_it_does_not_have() -> None:
    with pytest.raises(InvalidInput, match="metrics"):
        parse_filter("metrics.auc > 1", ["name"])


def test_pages_follow_the_order_and_resume_after_the_last_key() -> None:
    rows = [("b", 2), ("a", 1), ("c", 2), ("d", None)]
    order = parse_order(["n DESC"], {"n": lambda r: r[1]}, identity=[(lambda r: r[0], False)],
                        default=[])
    first, token = page(rows, order, 2, None, "rows")
    assert first == [("b", 2), ("c", 2)] and token is not None
    rest, last = page([*rows, ("bb", 2)], order, 2, token, "rows")
    assert rest == [("a", 1), ("d", None)] and last is None  # missing values last
    with pytest.raises(InvalidInput):
        page(rows, parse_order(["n ASC"], {"n": lambda r: r[1]},
                               identity=[(lambda r: r[0], False)], default=[]),
             2, token, "rows")  # a token of another ordering
    with pytest.raises(InvalidInput):
        parse_order(["nope"], {"n": lambda r: r[1]}, identity=[], default=[])
