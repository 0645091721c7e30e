"""The official PVE API schema per version: request validation and response checks.

The flat schema files (path template -> {METHOD: info}) ship gzip-compressed in
`openvle_pvesim/data/`. Request parameters are checked and coerced the way
PVE::JSONSchema does it, with its exact error texts; `validate_response` reports where a
handler's result strays from the method's `returns` schema.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from openvle_pvesim.errors import param_error
from openvle_pvesim.formats import FormatError, check_format

VERSIONS = ("9.1", "8.4")
VALIDATED_MAX = 4096  # cached GET validations per method before the cache starts over
_INT_RE = re.compile(r"^[+-]?\d+$")
_NUM_RE = re.compile(r"^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$")
_INDEXED_RE = re.compile(r"^(.+)\[n\]$")


@dataclass
class Method:
    """One method of one path template, with its parameter schema pre-split."""

    method: str
    template: str
    info: dict[str, Any]
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    indexed: list[tuple[re.Pattern[str], dict[str, Any]]] = field(default_factory=list)
    validated: dict[tuple[tuple[str, str], ...], dict[str, Any]] = field(
        default_factory=dict, repr=False
    )

    @property
    def allowtoken(self) -> bool:
        return bool(self.info.get("allowtoken", 1))

    @property
    def permissions(self) -> dict[str, Any] | None:
        perms: dict[str, Any] | None = self.info.get("permissions")
        return perms

    @property
    def returns(self) -> dict[str, Any]:
        returns: dict[str, Any] = self.info.get("returns") or {}
        return returns

    def prop(self, name: str) -> dict[str, Any] | None:
        """The schema of parameter `name`, expanding `net[n]`-style entries."""
        schema = self.properties.get(name)
        if schema is not None:
            return schema
        for regex, indexed in self.indexed:
            if regex.match(name):
                return indexed
        return None


class ApiSchema:
    """The schema of one PVE version."""

    def __init__(self, version: str, paths: dict[str, dict[str, dict[str, Any]]]) -> None:
        self.version = version
        self.paths = paths
        self._methods: dict[tuple[str, str], Method] = {}

    def method(self, method: str, template: str) -> Method | None:
        """The schema of `method template`, or None when this version lacks it."""
        key = (method, template)
        cached = self._methods.get(key)
        if cached is None:
            info = self.paths.get(template, {}).get(method)
            if info is None:
                return None
            cached = _build_method(method, template, info)
            self._methods[key] = cached
        return cached

    def privileges(self) -> frozenset[str]:
        """Every privilege name this version knows (from GET /access/roles/{roleid})."""
        info = self.paths["/access/roles/{roleid}"]["GET"]
        return frozenset(info["returns"]["properties"])


def _build_method(method: str, template: str, info: dict[str, Any]) -> Method:
    result = Method(method, template, info)
    for name, prop in (info.get("parameters") or {}).get("properties", {}).items():
        match = _INDEXED_RE.match(name)
        if match:
            result.indexed.append((re.compile(rf"^{re.escape(match[1])}\d+$"), prop))
        else:
            result.properties[name] = prop
    return result


@functools.cache
def load_schema(version: str) -> ApiSchema:
    """Load the bundled schema of `version` ("9.1" or "8.4")."""
    if version not in VERSIONS:
        raise ValueError(f"unsupported PVE version {version!r}; choose one of {VERSIONS}")
    blob = resources.files("openvle_pvesim").joinpath(f"data/apidata-{version}.json.gz")
    paths: dict[str, dict[str, dict[str, Any]]] = json.loads(gzip.decompress(blob.read_bytes()))
    return ApiSchema(version, paths)


@functools.cache
def _compile(pattern: str) -> re.Pattern[str] | None:
    """Translate a Perl pattern to Python; None when it uses syntax Python lacks."""
    translated = pattern.replace("(?^i:", "(?i:").replace("(?^:", "(?:")
    try:
        return re.compile(rf"^(?:{translated})$")
    except re.error:
        return None


def _add_error(errors: dict[str, str], path: str, msg: str) -> None:
    path = path or "_root"
    errors[path] = f"{errors[path]}\n{msg}" if path in errors else msg


def _scalar(value: Any) -> Any:
    """A JSON value as Perl sees it: true/false are 1/0, numbers their text."""
    if value is True:
        return "1"
    if value is False:
        return "0"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return value


def _check_type(path: str, kind: str | None, value: Any, errors: dict[str, str]) -> bool:
    if kind in {None, "any", "string"} and not isinstance(value, list | dict):
        return True
    if kind == "array":
        ok = isinstance(value, list)
    elif kind == "object":
        ok = isinstance(value, dict)
    elif isinstance(value, list | dict):
        perl_ref = "ARRAY" if isinstance(value, list) else "HASH"
        _add_error(errors, path, f"type check ('{kind}') failed - got {perl_ref}")
        return False
    elif kind == "boolean":
        ok = value in {"1", "0"}
    elif kind == "integer":
        ok = bool(_INT_RE.match(value))
    elif kind == "number":
        ok = bool(_NUM_RE.match(value))
    else:
        return True
    if not ok:
        if kind in {"array", "object"}:
            _add_error(errors, path, f"type check ('{kind}') failed")
        else:
            _add_error(errors, path, f"type check ('{kind}') failed - got '{value}'")
    return ok


def check_prop(value: Any, schema: dict[str, Any], path: str, errors: dict[str, str]) -> None:
    """PVE::JSONSchema::check_prop for one (already Perl-scalar) parameter value."""
    if value is None:
        if not schema.get("optional") and "alias" not in schema:
            _add_error(errors, path, "property is missing and it is not optional")
        return
    if not _check_type(path, schema.get("type"), value, errors):
        return
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                check_prop(_scalar(item), items, f"{path}[{index}]", errors)
        return
    if isinstance(value, dict):
        return
    _check_string(value, schema, path, errors)


def _check_string(value: str, schema: dict[str, Any], path: str, errors: dict[str, str]) -> None:
    if fmt := schema.get("format"):
        try:
            check_format(fmt, value, path, check_prop)
        except FormatError as exc:
            _add_error(errors, path, f"invalid format - {exc.text()}")
            return
    pattern = schema.get("pattern")
    regex = _compile(pattern) if pattern else None
    if regex is not None and not regex.match(value):
        _add_error(errors, path, "value does not match the regex pattern")
        return
    if (most := schema.get("maxLength")) is not None and len(value) > int(most):
        _add_error(errors, path, f"value may only be {most} characters long")
        return
    if (least := schema.get("minLength")) is not None and len(value) < int(least):
        _add_error(errors, path, f"value must be at least {least} characters long")
        return
    if _NUM_RE.match(value):
        number = float(value)
        if (hi := schema.get("maximum")) is not None and number > float(hi):
            _add_error(errors, path, f"value must have a maximum value of {hi}")
            return
        if (lo := schema.get("minimum")) is not None and number < float(lo):
            _add_error(errors, path, f"value must have a minimum value of {lo}")
            return
    if (enum := schema.get("enum")) and value not in enum:
        _add_error(
            errors,
            path,
            f"value '{value}' does not have a value in the enumeration '{', '.join(enum)}'",
        )


def _coerce(value: Any, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        return int(value)
    if kind == "number":
        return float(value)
    if kind == "boolean":
        return value == "1"
    return value


def _join_list(method: Method, name: str, value: Any) -> Any:
    """RESTHandler's legacy normalisation: an array for a `*-list` string is joined."""
    if not isinstance(value, list):
        return value
    schema = method.prop(name) or {}
    fmt = schema.get("format")
    if schema.get("type") == "string" and isinstance(fmt, str) and fmt.endswith("-list"):
        return ",".join(str(_scalar(item)) for item in value)
    return value


def validate_params(method: Method, raw: dict[str, Any]) -> dict[str, Any]:
    """Check `raw` (strings, or JSON values) against the method; return coerced params.

    Raises the 400 `Parameter verification failed.` PVEError with per-parameter errors.
    Validation is a pure function of the parameters, so a GET's string-only parameters
    are checked once and the coerced result is reused (a copy each time).
    """
    key = (
        tuple(raw.items())
        if method.method == "GET" and all(type(value) is str for value in raw.values())
        else None
    )
    cached = method.validated.get(key) if key is not None else None
    if cached is None:
        cached = _validate(method, raw)
        if key is not None:
            if len(method.validated) >= VALIDATED_MAX:
                method.validated.clear()
            method.validated[key] = cached
    return dict(cached)


def _validate(method: Method, raw: dict[str, Any]) -> dict[str, Any]:
    values = {name: _scalar(_join_list(method, name, value)) for name, value in raw.items()}
    errors: dict[str, str] = {}
    for name, declared in method.properties.items():
        check_prop(values.get(name), declared, name, errors)
    additional = (method.info.get("parameters") or {}).get("additionalProperties", 0)
    for name, value in values.items():
        schema: dict[str, Any] | None = method.properties.get(name)
        if schema is None:
            schema = method.prop(name)
            if schema is not None:
                check_prop(value, schema, name, errors)
            elif not additional:
                _add_error(
                    errors,
                    name,
                    "property is not defined in schema and the schema does not allow "
                    "additional properties",
                )
                continue
        requires = (schema or {}).get("requires")
        if isinstance(requires, str) and values.get(requires) is None:
            _add_error(errors, requires, f"missing property - '{name}' requires this property")
    if errors:
        raise param_error(**errors)
    return {
        name: _coerce(value, method.prop(name) or {}) if isinstance(value, str) else value
        for name, value in values.items()
    }


def _response_type_ok(kind: Any, value: Any) -> bool:
    """Perl scalars are loosely typed: accept what PVE's JSON encoder really emits."""
    if kind is None or kind == "any" or isinstance(kind, list):
        return True
    if isinstance(value, bool):
        return bool(kind == "boolean")
    checks: dict[str, bool] = {
        "null": value is None,
        "string": isinstance(value, str | int | float),
        "integer": isinstance(value, int)
        or (isinstance(value, str) and bool(_INT_RE.match(value))),
        "number": isinstance(value, int | float)
        or (isinstance(value, str) and bool(_NUM_RE.match(value))),
        "boolean": value in (0, 1, "0", "1"),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }
    return checks.get(kind, True)


def check_response(schema: dict[str, Any], value: Any, path: str, out: list[str]) -> None:
    """Append to `out` every place where `value` does not fit `schema`."""
    kind = schema.get("type")
    if value is None and schema.get("optional"):
        return  # e.g. POST .../config with background_delay: null when the task finished
    if not _response_type_ok(kind, value):
        out.append(f"{path}: expected {kind}, got {type(value).__name__} {value!r:.60}")
        return
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            check_response(schema["items"], item, f"{path}[{index}]", out)
    elif isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        props: dict[str, dict[str, Any]] = schema["properties"]
        for name, sub in props.items():
            if name in value:
                check_response(sub, value[name], f"{path}.{name}", out)
            elif not sub.get("optional"):
                out.append(f"{path}.{name}: required property missing")
        if schema.get("additionalProperties") == 0:
            out.extend(f"{path}.{name}: not in schema" for name in value if name not in props)
    elif isinstance(value, str) and kind == "string":
        enum = schema.get("enum")
        if enum and value not in enum:
            out.append(f"{path}: {value!r} not in enum {enum}")
        regex = _compile(schema["pattern"]) if schema.get("pattern") else None
        if regex is not None and not regex.match(value):
            out.append(f"{path}: {value!r} does not match {schema['pattern']}")


def validate_response(version: str, method: str, template: str, data: Any) -> list[str]:
    """Violations of `method template`'s `returns` schema by `data` (empty when it fits)."""
    spec = load_schema(version).method(method, template)
    if spec is None:
        return [f"{method} {template}: not in the {version} schema"]
    out: list[str] = []
    check_response(spec.returns, data, f"{method} {template}", out)
    return out
