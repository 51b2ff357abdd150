"""One schema for the records the registry hands out, in both directions.

``encode`` turns a record (or a list or ``Page`` of them) into JSON-ready data and
``decode`` turns such data back into the record, both through a pydantic ``TypeAdapter``
built once per type over the plain dataclasses. A REST server can take the same
dataclasses as response models and an HTTP client read its answers with ``decode``, so
server, client, the Python API and ``--json`` output share one schema.

Records derive from ``Record``, which adds two things to pydantic's dataclass schema:
``computed`` properties (``ModelVersion.uri``) that are encoded but ignored on decode, and
times written as ``datetime.isoformat()`` gives them (``+00:00``, never pydantic's ``Z``),
read back with a standard-library ``timezone``. Pydantic is imported on first use only, so
``import modelyard`` and the CLI start without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, Union, cast, get_args, get_origin

from modelyard.domain.paging import Page
from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler, TypeAdapter
    from pydantic_core import CoreSchema

T = TypeVar("T")


class Record:
    """Base of the registry's dataclasses: ``to_dict`` and decoding through the codec."""

    __slots__ = ()
    computed: ClassVar[tuple[str, ...]] = ()
    """Properties encoded after the fields, under their own names (decoding ignores them)."""

    def to_dict(self) -> dict[str, Any]:
        return cast(dict[str, Any], encode(self))

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        """Pydantic's dataclass schema, plus the computed properties and ISO times."""
        schema = handler(source)
        _iso_times(schema)
        if cls.computed:
            from typing import get_type_hints

            from pydantic_core import core_schema

            args = handler.resolve_ref_schema(schema)["schema"]
            assert args["type"] == "dataclass-args", args["type"]
            args["computed_fields"] = [
                core_schema.computed_field(
                    prop, handler.generate_schema(
                        get_type_hints(getattr(cls, prop).fget)["return"]))
                for prop in cls.computed]
        return schema


def encode(obj: object) -> Any:
    """``obj`` as JSON-ready data: a record as a dict (computed properties included), a list
    or tuple of records as a list, a ``Page`` as ``{"items": [...], "next_page_token": ...}``."""
    if isinstance(obj, Page):
        obj = PageOf(list(obj), obj.next_page_token)
        tp: Any = _generic(PageOf, _item_type(obj.items))
    elif isinstance(obj, list | tuple):
        obj = list(obj)
        tp = _generic(list, _item_type(obj))
    else:
        tp = type(obj)
    return _serializer(tp).dump_python([obj], mode="json")[0]


def decode(tp: type[T], data: Any) -> T:
    """``data`` (as ``encode`` wrote it, e.g. parsed from a response) as a ``tp``:
    ``decode(ModelVersion, d)``, ``decode(list[ModelVersion], d)``, ``decode(Page[Run], d)``.

    Data that does not fit raises InvalidInput naming the first bad field.
    """
    from pydantic import ValidationError

    page = get_origin(tp) is Page
    schema: Any = _generic(PageOf, get_args(tp)[0]) if page else tp
    try:
        value = _adapter(schema).validate_python(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        first = errors[0]
        where = ".".join(str(part) for part in first["loc"]) or "value"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InvalidInput(f"invalid {exc.title}: {where}: {first['msg']}{more}",
                           errors=errors) from None
    return cast(T, Page(value.items, value.next_page_token) if page else value)


def wire_type(tp: Any) -> Any:
    """The type whose schema describes ``tp`` on the wire (a ``Page`` travels as
    ``{"items", "next_page_token"}``): what a server documents as a response."""
    return _generic(PageOf, get_args(tp)[0]) if get_origin(tp) is Page else tp


@dataclass(frozen=True)
class PageOf(Generic[T]):
    """How a ``Page`` travels: its items and the token of the next page."""

    items: list[T]
    next_page_token: str | None = None


def _item_type(items: list[Any]) -> Any:
    kinds = tuple(dict.fromkeys(type(item) for item in items))
    return Union[kinds] if kinds else Any  # noqa: UP007 (X | Y cannot take a tuple)


def _generic(origin: Any, item: Any) -> Any:
    """``origin[item]`` for an item type known only at run time."""
    return origin[item]


@cache
def _adapter(tp: Any) -> TypeAdapter[Any]:
    from pydantic import TypeAdapter

    return TypeAdapter(tp)


@cache
def _serializer(tp: Any) -> TypeAdapter[Any]:
    """An adapter of ``list[tp]`` that keeps nan and inf as floats (as ``json.dumps``
    writes them) wherever they are, ``Any``-typed lineage and audit values included.
    Pydantic honours that setting only on an adapter's own config, which a dataclass
    type may not take (and a stdlib dataclass's ``__pydantic_config__`` is not applied to
    its ``Any`` fields): hence the list around it."""
    from pydantic import ConfigDict, TypeAdapter

    return TypeAdapter(list[tp], config=ConfigDict(ser_json_inf_nan="constants"))


def _iso_times(schema: Any) -> None:
    """Give every datetime in ``schema`` today's text form and standard-library zones."""
    if isinstance(schema, list):
        for item in schema:
            _iso_times(item)
    elif isinstance(schema, dict):
        if schema.get("type") == "datetime" and "serialization" not in schema:
            from pydantic_core import core_schema

            inner = {**schema, "serialization": core_schema.plain_serializer_function_ser_schema(
                datetime.isoformat, when_used="json")}
            schema.clear()
            schema.update(core_schema.no_info_after_validator_function(_stdlib_zone, inner))
            return
        for value in schema.values():
            _iso_times(value)


def _stdlib_zone(value: datetime) -> datetime:
    """Pydantic reads offsets into its own tzinfo; records from the database carry
    ``datetime.timezone``, and decoded ones should compare and print alike."""
    offset = value.utcoffset()
    return value if offset is None else value.replace(tzinfo=timezone(offset))
