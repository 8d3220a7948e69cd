"""Validate decoded JSON against the JSON Schemas in `schemas.py`.

One definition serves both the 400 answers and the OpenAPI document. Only the
keywords those schemas use are implemented: type (one or a list), properties,
required, additionalProperties (false), items, enum, minLength/maxLength,
minimum/maximum, minItems/maxItems, anyOf. Errors carry a JSON path, like zod's.
"""

from __future__ import annotations

from typing import Any

from runs.api.errors import ApiError

_TYPES = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def _type_name(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _TYPES[name](value):
            return name
    return type(value).__name__


def errors_for(value: Any, schema: dict, path: tuple = ()) -> list[dict[str, Any]]:
    """Every violation of `schema` by `value`, as [{code, message, path}]."""
    if "anyOf" in schema:
        branches = [errors_for(value, option, path) for option in schema["anyOf"]]
        if any(not b for b in branches):
            return []
        return min(branches, key=len)
    expected = schema.get("type")
    if expected is not None:
        names = expected if isinstance(expected, list) else [expected]
        if not any(_TYPES[name](value) for name in names):
            return [
                _error(
                    "invalid_type",
                    f"Expected {' or '.join(names)}, received {_type_name(value)}",
                    path,
                )
            ]
    if "enum" in schema and value not in schema["enum"]:
        options = ", ".join(repr(o) for o in schema["enum"])
        return [_error("invalid_enum_value", f"Expected one of {options}", path)]
    if isinstance(value, str):
        return _string_errors(value, schema, path)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _number_errors(value, schema, path)
    if isinstance(value, list):
        return _array_errors(value, schema, path)
    if isinstance(value, dict):
        return _object_errors(value, schema, path)
    return []


def _string_errors(value: str, schema: dict, path: tuple) -> list[dict]:
    if "minLength" in schema and len(value) < schema["minLength"]:
        return [
            _error(
                "too_small",
                f"String must contain at least {schema['minLength']} character(s)",
                path,
            )
        ]
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        return [
            _error(
                "too_big",
                f"String must contain at most {schema['maxLength']} character(s)",
                path,
            )
        ]
    return []


def _number_errors(value: float, schema: dict, path: tuple) -> list[dict]:
    if "minimum" in schema and value < schema["minimum"]:
        return [
            _error(
                "too_small",
                f"Number must be greater than or equal to {schema['minimum']}",
                path,
            )
        ]
    if "maximum" in schema and value > schema["maximum"]:
        return [
            _error(
                "too_big",
                f"Number must be less than or equal to {schema['maximum']}",
                path,
            )
        ]
    return []


def _array_errors(value: list, schema: dict, path: tuple) -> list[dict]:
    if "minItems" in schema and len(value) < schema["minItems"]:
        return [
            _error(
                "too_small",
                f"Array must contain at least {schema['minItems']} element(s)",
                path,
            )
        ]
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        return [
            _error(
                "too_big",
                f"Array must contain at most {schema['maxItems']} element(s)",
                path,
            )
        ]
    found: list[dict] = []
    if "items" in schema:
        for index, item in enumerate(value):
            found.extend(errors_for(item, schema["items"], (*path, index)))
    return found


def _object_errors(value: dict, schema: dict, path: tuple) -> list[dict]:
    found: list[dict] = []
    properties = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            found.append(_error("invalid_type", "Required", (*path, name)))
    for name, item in value.items():
        if name in properties:
            found.extend(errors_for(item, properties[name], (*path, name)))
        elif schema.get("additionalProperties") is False:
            found.append(
                _error("unrecognized_keys", f"Unrecognized key: {name!r}", path)
            )
    return found


def _error(code: str, message: str, path: tuple) -> dict[str, Any]:
    return {"code": code, "message": message, "path": list(path)}


def describe(errors: list[dict[str, Any]]) -> str:
    """`Validation error: Expected string, received number at "options.tags"`."""
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error["path"])
        parts.append(f'{error["message"]} at "{where}"' if where else error["message"])
    return "Validation error: " + "; ".join(parts)


def validate(value: Any, schema: dict) -> Any:
    """`value` unchanged if it satisfies `schema`; else ApiError 400 with details."""
    found = errors_for(value, schema)
    if found:
        raise ApiError(400, describe(found), details=found)
    return value
