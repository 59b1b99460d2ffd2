"""Declared structures: an operation's ``input`` and ``output`` fields, checked at start-up, compiled once.

A structure is written in the api description as a list of field names (each
required, any JSON value) or as a mapping of field name to type spec; see
docs/structures.md. ``parse_structure`` checks what is written and
compiles it into two sets of closures:

- a fast one, ``accept(data) -> bool``, that fills defaults (and drops
  ignored unknown fields) and says whether the data is valid, without
  building a single error string;
- a slow one, run only after ``accept`` said no, that names every field
  error with its path, what was expected and what came.

Nothing interprets the spec during a call.
"""

from __future__ import annotations

import collections.abc
import copy
import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import ApiError
from ._options import describe

__all__ = [
    "FIELD_TYPES",
    "FieldError",
    "Structure",
    "TypeSpec",
    "describe_value",
    "fields_of_class",
    "parse_structure",
]

#: The type names a field spec may use.
FIELD_TYPES = ("string", "integer", "number", "boolean", "null", "any", "list", "mapping", "structure")
_SPEC_KEYS = ("type", "required", "default", "items", "values", "fields", "doc")
#: Integers orjson reads as integers; beyond them a JSON number arrives as a float.
INT_MIN = -(1 << 63)
INT_MAX = (1 << 64) - 1

_MISSING: Any = object()

#: ``(value) -> bool``: the fast check of one value.
Accept = Callable[[Any], bool]
#: ``(value, path, errors)``: appends the errors of one value.
Explain = Callable[[Any, str, list["FieldError"]], None]


class FieldError(dict[str, str]):
    """One field error: ``{"path": "address.city", "expected": "string", "got": "integer 3"}``.

    A dict, so it goes on the wire as it is.
    """

    def __init__(self, path: str, expected: str, got: str) -> None:
        super().__init__(path=path, expected=expected, got=got)

    def __str__(self) -> str:
        return f"{self['path'] or '(the body)'}: expected {self['expected']}, got {self['got']}"


def describe_value(value: object) -> str:
    """Name a value's JSON type, with the value itself for short scalars."""
    if value is _MISSING:
        return "nothing (the field is missing)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean " + ("true" if value else "false")
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 30 else value[:27] + "..."
        return f"string {shown!r}"
    if isinstance(value, (list, tuple)):
        return f"list of {len(value)} items"
    if isinstance(value, Mapping):
        return f"mapping of {len(value)} fields"
    return type(value).__name__


@dataclass(frozen=True)
class TypeSpec:
    """One field's declared type, checked.

    Attributes:
        types: the accepted type names (more than one: a union).
        required: the field must be present.
        default: the value filled in when the field is missing, or the
            module's missing marker.
        items: the spec of a list's items.
        values: the spec of a mapping's values.
        fields: the fields of a nested structure.
        doc: a description, for the OpenAPI document.
    """

    types: tuple[str, ...]
    required: bool = True
    default: Any = _MISSING
    items: TypeSpec | None = None
    values: TypeSpec | None = None
    fields: Mapping[str, TypeSpec] | None = None
    doc: str = ""

    @property
    def has_default(self) -> bool:
        """Whether a default is declared."""
        return self.default is not _MISSING

    def expected(self) -> str:
        """What this spec accepts, for an error message: ``"list of integer"``, ``"string or null"``."""
        names = []
        for name in self.types:
            if name == "list" and self.items is not None:
                names.append(f"list of {self.items.expected()}")
            elif name == "mapping" and self.values is not None:
                names.append(f"mapping of {self.values.expected()}")
            else:
                names.append(name)
        return " or ".join(names)


@dataclass(frozen=True)
class Structure:
    """A checked and compiled structure: an operation's input or output.

    Attributes:
        fields: each field's spec, in declaration order.
        reject_unknown: fields not declared are errors; otherwise they are
            dropped.
        accept: ``accept(fields_dict) -> bool``; fills defaults in place.
        explain: ``explain(fields_dict) -> list of FieldError``; call it
            when ``accept`` said no.
    """

    fields: Mapping[str, TypeSpec]
    reject_unknown: bool
    accept: Callable[[Any], bool] = field(repr=False, compare=False)
    explain_into: Explain = field(repr=False, compare=False)

    def explain(self, data: Any) -> list[FieldError]:
        """Every field error of ``data``, with its path."""
        errors: list[FieldError] = []
        self.explain_into(data, "", errors)
        return errors

    def errors(self, data: Any) -> list[FieldError]:
        """Check ``data`` (filling defaults); the empty list when it is valid."""
        if self.accept(data):
            return []
        return self.explain(data)

    def describe(self) -> str:
        """One line for ``pyservice chain``: the fields, required ones first."""
        parts = [f"{name}: {spec.expected()}{'' if spec.required else '?'}" for name, spec in self.fields.items()]
        unknown = "" if self.reject_unknown else ", unknown ignored"
        return "{" + ", ".join(parts) + "}" + unknown


def parse_structure(key: str, given: Any, *, reject_unknown: bool) -> Structure:
    """Check a structure as written in the api description and compile it.

    Args:
        key: its dotted path, for errors (``operations.greet.input``).
        given: a list of field names, or a mapping of field name to spec.
        reject_unknown: whether undeclared fields are errors (else dropped).

    Raises:
        ApiError: naming the first key that is wrong.
    """
    fields = _parse_fields(key, given)
    accept, explain = _compile_structure(fields, reject_unknown)
    fix = _compile_fields_fix(fields)
    if fix is not None:
        accept = _accept_after_fixing(accept, fix)
    return Structure(fields, reject_unknown, accept, explain)


def _accept_after_fixing(accept: Accept, fix: Callable[[Any], Any]) -> Accept:
    # JSON has one number type: 3.0 is the integer 3 there (and in JSON Schema), but orjson reads
    # it as a float. Such values are made ints, only once the fast check has said no.
    def accept_or_fix(data: Any) -> bool:
        if accept(data):
            return True
        fix(data)
        return accept(data)

    return accept_or_fix


# -- checking the spec -------------------------------------------------------


def _parse_fields(key: str, given: Any) -> dict[str, TypeSpec]:
    if isinstance(given, type):
        given = fields_of_class(key, given)
    if isinstance(given, list):
        fields: dict[str, TypeSpec] = {}
        for name in given:
            if not isinstance(name, str) or not name:
                raise ApiError(key, f"expected field names (non-empty strings), got {describe(name)}")
            if name in fields:
                raise ApiError(f"{key}.{name}", "field listed twice")
            fields[name] = TypeSpec(("any",))
        return fields
    if not isinstance(given, Mapping):
        raise ApiError(key, f"expected a list of field names or a mapping of field to type, got {describe(given)}")
    result = {}
    for name, spec in given.items():
        if not isinstance(name, str) or not name:
            raise ApiError(key, f"expected field names (non-empty strings), got {describe(name)}")
        result[name] = _parse_spec(f"{key}.{name}", spec)
    return result


def _parse_types(key: str, given: Any) -> tuple[str, ...]:
    names = given if isinstance(given, list) else [given]
    if not names:
        raise ApiError(key, "expected a type name or a non-empty list of them")
    for name in names:
        if name not in FIELD_TYPES:
            raise ApiError(key, f"expected one of {', '.join(FIELD_TYPES)}, got {describe(name)}")
    if len(set(names)) != len(names):
        raise ApiError(key, "a type is listed twice")
    return ("any",) if "any" in names else tuple(names)


def _parse_spec(key: str, spec: Any) -> TypeSpec:
    if isinstance(spec, (str, list)):
        types = _parse_types(key, spec)
        if "structure" in types:
            raise ApiError(key, "a structure needs its fields: write {'type': 'structure', 'fields': {...}}")
        return TypeSpec(types)
    if not isinstance(spec, Mapping):
        raise ApiError(key, f"expected a type name, a list of them, or a mapping with 'type', got {describe(spec)}")
    unknown = [name for name in spec if name not in _SPEC_KEYS]
    if unknown:
        raise ApiError(f"{key}.{unknown[0]}", f"unknown key (accepted: {', '.join(_SPEC_KEYS)})")
    if "type" in spec:
        types = _parse_types(f"{key}.type", spec["type"])
    else:
        # Written without a type, a spec says what it is by its one sub-spec.
        subs = (("fields", "structure"), ("items", "list"), ("values", "mapping"))
        inferred = [name for sub, name in subs if sub in spec]
        if len(inferred) != 1:
            raise ApiError(f"{key}.type", "is required")
        types = (inferred[0],)
    items = values = None
    fields = None
    for sub, owner in (("items", "list"), ("values", "mapping"), ("fields", "structure")):
        if sub in spec and owner not in types:
            raise ApiError(f"{key}.{sub}", f"only a {owner} has {sub}; the type is {' or '.join(types)}")
    if "items" in spec:
        items = _parse_spec(f"{key}.items", spec["items"])
    if "values" in spec:
        values = _parse_spec(f"{key}.values", spec["values"])
    if "structure" in types:
        if "fields" not in spec:
            raise ApiError(f"{key}.fields", "is required for a structure")
        fields = _parse_fields(f"{key}.fields", spec["fields"])
    doc = spec.get("doc", "")
    if not isinstance(doc, str):
        raise ApiError(f"{key}.doc", f"expected a string, got {describe(doc)}")
    required = spec.get("required", "default" not in spec)
    if not isinstance(required, bool):
        raise ApiError(f"{key}.required", f"expected a boolean, got {describe(required)}")
    if required and "default" in spec:
        raise ApiError(f"{key}.required", "a field with a default is not required")
    result = TypeSpec(types, required, spec.get("default", _MISSING), items, values, fields, doc)
    if result.has_default:
        accept, explain = _compile_spec(result, reject_unknown=True)
        trial = copy.deepcopy(result.default)
        if not accept(trial):
            errors: list[FieldError] = []
            field_name = key.rsplit(".", 1)[-1]
            explain(trial, field_name, errors)
            raise ApiError(
                f"{key}.default",
                f"the default of {field_name!r} does not match its type: {'; '.join(map(str, errors))}",
            )
    return result


# -- structures declared as classes -----------------------------------------

_SCALAR_TYPES: dict[Any, str] = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
    None: "null",
    Any: "any",
    object: "any",
}
_LIST_ORIGINS = (list, collections.abc.Sequence, collections.abc.MutableSequence, tuple)
_MAPPING_ORIGINS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


def fields_of_class(key: str, cls: type) -> dict[str, Any]:
    """The fields a class declares, written as the api description writes them.

    A ``TypedDict``, a dataclass or any class with annotations declares a
    structure: each annotated attribute is a field, its annotation its type
    (``str``, ``int``, ``float``, ``bool``, ``None``, ``Any``, ``list[X]``,
    ``dict[str, X]``, unions, another such class), and
    ``Annotated[X, "text"]`` gives its description. A field is optional
    when it has a default (a dataclass's or the class attribute's) or, in a
    ``TypedDict``, is ``NotRequired`` (or the class is ``total=False``).
    The result goes through the same checks and compiled validation as a
    written mapping.

    Raises:
        ApiError: an annotation that is not a field type, naming the field.
    """
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception as exc:  # a forward reference that does not resolve, and anything else
        raise ApiError(key, f"cannot read the annotations of {cls.__qualname__}: {exc}") from None
    if not hints:
        raise ApiError(key, f"{cls.__qualname__} declares no fields: annotate its attributes (name: str)")
    required_keys = getattr(cls, "__required_keys__", None)  # a TypedDict
    dataclass_fields = (
        {field.name: field for field in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else None
    )
    fields: dict[str, Any] = {}
    for name, hint in hints.items():
        if name.startswith("_") or typing.get_origin(hint) is typing.ClassVar:
            continue
        path = f"{key}.{name}"
        spec = _annotation_spec(path, hint)
        spec = dict(spec) if isinstance(spec, dict) else {"type": spec}
        if required_keys is not None:
            # The marker itself first: under `from __future__ import annotations`, Python 3.10 and 3.11
            # compute __required_keys__ without reading it.
            marker = _required_marker(hint)
            if marker == "NotRequired" or (marker is None and name not in required_keys):
                spec["required"] = False
        elif dataclass_fields is not None:
            if name not in dataclass_fields:
                continue  # a ClassVar or InitVar
            field_ = dataclass_fields[name]
            if field_.default is not dataclasses.MISSING:
                spec["default"] = field_.default
            elif field_.default_factory is not dataclasses.MISSING:
                spec["default"] = field_.default_factory()
        elif name in cls.__dict__:
            spec["default"] = cls.__dict__[name]
        fields[name] = spec
    return fields


def _annotation_spec(key: str, hint: Any) -> str | list[str] | dict[str, Any]:
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if origin is typing.Annotated:
        spec = _annotation_spec(key, arguments[0])
        docs = [text for text in arguments[1:] if isinstance(text, str)]
        if docs:
            spec = dict(spec) if isinstance(spec, dict) else {"type": spec}
            spec["doc"] = docs[0]
        return spec
    if _is_required_marker(origin):
        return _annotation_spec(key, arguments[0])
    if hint in _SCALAR_TYPES:
        return _SCALAR_TYPES[hint]
    if origin in (typing.Union, types.UnionType):
        return _union_spec(key, [_annotation_spec(key, argument) for argument in arguments])
    if hint in _LIST_ORIGINS or origin in _LIST_ORIGINS:
        if origin is tuple and not (len(arguments) == 2 and arguments[1] is Ellipsis):
            raise ApiError(key, f"a tuple field must be tuple[X, ...] (JSON has lists), got {_hint_name(hint)}")
        if not arguments or arguments[0] in (Any, object):
            return "list"
        return {"type": "list", "items": _annotation_spec(f"{key}.items", arguments[0])}
    if hint in _MAPPING_ORIGINS or origin in _MAPPING_ORIGINS:
        if arguments and arguments[0] is not str:
            raise ApiError(key, f"a mapping field has string keys (JSON objects do), got {_hint_name(hint)}")
        if len(arguments) < 2 or arguments[1] in (Any, object):
            return "mapping"
        return {"type": "mapping", "values": _annotation_spec(f"{key}.values", arguments[1])}
    if isinstance(hint, type) and hint.__module__ != "builtins" and getattr(hint, "__annotations__", None):
        return {"type": "structure", "fields": fields_of_class(f"{key}.fields", hint)}
    raise ApiError(
        key,
        f"a field's type is str, int, float, bool, None, Any, list[X], dict[str, X], a union of them, "
        f"or a class declaring fields; got {_hint_name(hint)}",
    )


def _required_marker(hint: Any) -> str | None:
    # "Required", "NotRequired" or None, looking through Annotated.
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return _required_marker(typing.get_args(hint)[0])
    if _is_required_marker(origin):
        return str(getattr(origin, "__name__", None) or getattr(origin, "_name", ""))
    return None


def _is_required_marker(origin: Any) -> bool:
    # typing.Required and NotRequired (3.11), or typing_extensions' (3.10).
    return origin is not None and getattr(origin, "__name__", getattr(origin, "_name", "")) in (
        "Required",
        "NotRequired",
    )


def _union_spec(key: str, alternatives: list[str | list[str] | dict[str, Any]]) -> str | list[str] | dict[str, Any]:
    names: list[str] = []
    merged: dict[str, Any] = {}
    for alternative in alternatives:
        spec = alternative if isinstance(alternative, dict) else {"type": alternative}
        for name in spec["type"] if isinstance(spec["type"], list) else [spec["type"]]:
            if name in names:
                raise ApiError(key, f"the union names {name} twice; a field's union has one of each kind")
            names.append(name)
        for sub in ("items", "values", "fields", "doc"):
            if sub in spec:
                merged[sub] = spec[sub]
    if "any" in names:
        return "any"
    if not merged:
        return names
    return {"type": names, **merged}


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__qualname__", None) or repr(hint)


# -- compiling ---------------------------------------------------------------


def _is_string(value: Any) -> bool:
    return type(value) is str or isinstance(value, str)


def _is_integer(value: Any) -> bool:
    # bool is an int subclass; a boolean is never an integer here.
    return type(value) is int or (isinstance(value, int) and not isinstance(value, bool))


def _is_number(value: Any) -> bool:
    kind = type(value)
    return kind is float or kind is int or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _is_boolean(value: Any) -> bool:
    return value is True or value is False


def _is_null(value: Any) -> bool:
    return value is None


def _is_list(value: Any) -> bool:
    return type(value) is list or isinstance(value, (list, tuple))


def _is_mapping(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


_SCALARS: dict[str, Accept] = {
    "string": _is_string,
    "integer": _is_integer,
    "number": _is_number,
    "boolean": _is_boolean,
    "null": _is_null,
}


def _compile_spec(spec: TypeSpec, reject_unknown: bool) -> tuple[Accept, Explain]:
    if spec.types == ("any",):
        return _accept_anything, _explain_nothing
    alternatives = [_compile_type(name, spec, reject_unknown) for name in spec.types]
    expected = spec.expected()
    if len(alternatives) == 1:
        ((accept, explain_one, is_kind),) = alternatives

        def explain(value: Any, path: str, errors: list[FieldError]) -> None:
            if is_kind(value):
                explain_one(value, path, errors)
            else:
                errors.append(FieldError(path, expected, describe_value(value)))

        return accept, explain
    accepts = tuple(accept for accept, _, _ in alternatives)

    def accept_union(value: Any) -> bool:
        # Loops, not any()/all(): no generator to make on the hot path.
        for accept in accepts:  # noqa: SIM110
            if accept(value):
                return True
        return False

    def explain_union(value: Any, path: str, errors: list[FieldError]) -> None:
        # The first alternative of the value's own kind says what is wrong inside it.
        for _, explain_one, is_kind in alternatives:
            if is_kind(value):
                explain_one(value, path, errors)
                return
        errors.append(FieldError(path, expected, describe_value(value)))

    return accept_union, explain_union


def _accept_anything(value: Any) -> bool:
    return True


def _explain_nothing(value: Any, path: str, errors: list[FieldError]) -> None:
    pass


def _compile_type(name: str, spec: TypeSpec, reject_unknown: bool) -> tuple[Accept, Explain, Accept]:
    """``(accept, explain_inside, is_kind)`` for one type of a spec."""
    if name in _SCALARS:
        check = _SCALARS[name]
        return check, _explain_nothing, check
    if name == "list":
        if spec.items is None or spec.items.types == ("any",):
            return _is_list, _explain_nothing, _is_list
        return (*_compile_list(spec.items, reject_unknown), _is_list)
    if name == "mapping":
        if spec.values is None or spec.values.types == ("any",):
            return _is_mapping, _explain_nothing, _is_mapping
        return (*_compile_mapping(spec.values, reject_unknown), _is_mapping)
    assert spec.fields is not None
    accept_fields, explain_fields = _compile_structure(spec.fields, reject_unknown)

    def accept_structure(value: Any) -> bool:
        return _is_mapping(value) and accept_fields(value)

    return accept_structure, explain_fields, _is_mapping


def _compile_list(items: TypeSpec, reject_unknown: bool) -> tuple[Accept, Explain]:
    accept_item, explain_item = _compile_spec(items, reject_unknown)

    def accept(value: Any) -> bool:
        if not _is_list(value):
            return False
        for item in value:  # noqa: SIM110 - no generator on the hot path
            if not accept_item(item):
                return False
        return True

    def explain(value: Any, path: str, errors: list[FieldError]) -> None:
        for index, item in enumerate(value):
            explain_item(item, f"{path}[{index}]", errors)

    return accept, explain


def _compile_mapping(values: TypeSpec, reject_unknown: bool) -> tuple[Accept, Explain]:
    accept_value, explain_value = _compile_spec(values, reject_unknown)

    def accept(value: Any) -> bool:
        if not _is_mapping(value):
            return False
        for item in value.values():  # noqa: SIM110 - no generator on the hot path
            if not accept_value(item):
                return False
        return True

    def explain(value: Any, path: str, errors: list[FieldError]) -> None:
        for name, item in value.items():
            explain_value(item, _join(path, str(name)), errors)

    return accept, explain


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


Fix = Callable[[Any], Any]


def _integral(value: Any) -> Any:
    # Strictly inside the bounds: a float equal to one may be a rounded integer beyond it.
    if type(value) is float and value.is_integer() and INT_MIN < value < INT_MAX:
        return int(value)
    return value


def _compile_fix(spec: TypeSpec) -> Fix | None:
    """``fix(value) -> value`` turning integral floats into ints where an integer is declared; None if none is."""
    fixes: list[Fix] = []
    if "integer" in spec.types and "number" not in spec.types:
        fixes.append(_integral)
    if "list" in spec.types and spec.items is not None:
        fix_item = _compile_fix(spec.items)
        if fix_item is not None:
            fixes.append(_fix_list(fix_item))
    if "mapping" in spec.types and spec.values is not None:
        fix_value = _compile_fix(spec.values)
        if fix_value is not None:
            fixes.append(_fix_mapping(fix_value))
    if "structure" in spec.types and spec.fields is not None:
        fix_fields = _compile_fields_fix(spec.fields)
        if fix_fields is not None:
            fixes.append(fix_fields)
    if not fixes:
        return None

    def fix(value: Any) -> Any:
        for one in fixes:
            value = one(value)
        return value

    return fix


def _fix_list(fix_item: Fix) -> Fix:
    def fix(value: Any) -> Any:
        if type(value) is list:
            value[:] = [fix_item(item) for item in value]
        return value

    return fix


def _fix_mapping(fix_value: Fix) -> Fix:
    def fix(value: Any) -> Any:
        if isinstance(value, dict):
            for key, item in value.items():
                value[key] = fix_value(item)
        return value

    return fix


def _compile_fields_fix(fields: Mapping[str, TypeSpec]) -> Fix | None:
    fixes = [(name, one) for name, spec in fields.items() if (one := _compile_fix(spec)) is not None]
    if not fixes:
        return None

    def fix(value: Any) -> Any:
        if isinstance(value, dict):
            for name, fix_one in fixes:
                if name in value:
                    value[name] = fix_one(value[name])
        return value

    return fix


def _default_factory(default: Any) -> Callable[[], Any]:
    if default is None or isinstance(default, (str, int, float, bool)):
        return lambda: default
    # A mutable default is copied for each call, so no call sees another's changes.
    return lambda: copy.deepcopy(default)


def _compile_structure(fields: Mapping[str, TypeSpec], reject_unknown: bool) -> tuple[Accept, Explain]:
    # Fields whose value needs no check ("any") only need to be present.
    required = tuple(
        (name, None if spec.types == ("any",) else _compile_spec(spec, reject_unknown)[0])
        for name, spec in fields.items()
        if spec.required
    )
    optional = tuple(
        (
            name,
            None if spec.types == ("any",) else _compile_spec(spec, reject_unknown)[0],
            _default_factory(spec.default) if spec.has_default else None,
        )
        for name, spec in fields.items()
        if not spec.required
    )
    explains = {name: _compile_spec(spec, reject_unknown)[1] for name, spec in fields.items()}
    known = frozenset(fields)
    expected = {name: spec.expected() for name, spec in fields.items()}
    accepted = ", ".join(fields) or "none"

    def accept(data: Any) -> bool:
        for name, check in required:
            value = data.get(name, _MISSING)
            if value is _MISSING or (check is not None and not check(value)):
                return False
        present = len(required)
        for name, check, default in optional:
            value = data.get(name, _MISSING)
            if value is _MISSING:
                if default is not None:
                    data[name] = default()
                    present += 1
            else:
                present += 1
                if check is not None and not check(value):
                    return False
        if len(data) > present:
            if reject_unknown:
                return False
            for name in [name for name in data if name not in known]:
                del data[name]
        return True

    def explain(data: Any, path: str, errors: list[FieldError]) -> None:
        for name, value_explain in explains.items():
            value = data.get(name, _MISSING)
            if value is _MISSING:
                if fields[name].required:
                    errors.append(FieldError(_join(path, name), expected[name], describe_value(value)))
            else:
                value_explain(value, _join(path, name), errors)
        if reject_unknown:
            for name in data:
                if name not in known:
                    got = describe_value(data[name])
                    errors.append(FieldError(_join(path, str(name)), f"no such field (known: {accepted})", got))

    return accept, explain
