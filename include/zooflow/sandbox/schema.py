"""Request-body checks shaped like Panoptes' JSON-schema validation.

Panoptes rejects bodies with missing required keys, keys outside the schema, or wrong JSON types
with 422 and a Ruby-hash-ish message such as
``{"links"=>"contains additional properties [\\"project\\"] outside of the schema when none are allowed"}``.
Zooflow code trips over exactly these (sending ``links.project`` on a subject update, say), so the
sandbox rejects the same bodies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from zooflow.sandbox.web import ApiError, Request

JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer"}


def _fail(where: str, text: str) -> ApiError:
    return ApiError(422, f'{{"{where}"=>"{text}"}}')


def _check_object(data: Any, where: str, required: tuple, optional: tuple, types: dict[str, type]) -> dict:
    if not isinstance(data, dict):
        raise _fail(where, f"of type {type(data).__name__} did not match the following type: object")
    for key in required:
        if key not in data:
            raise _fail(where, f"did not contain a required property of '{key}'")
    extra = [key for key in data if key not in required and key not in optional]
    if extra:
        listed = json.dumps(extra).replace('"', '\\"')
        raise _fail(where, f"contains additional properties {listed} outside of the schema when none are allowed")
    for key, expected in types.items():
        value = data.get(key)
        if value is not None and (not isinstance(value, expected) or (expected is int and isinstance(value, bool))):
            raise _fail(key, f"of type {type(value).__name__} did not match the following type: {JSON_TYPES[expected]}")
    return data


@dataclass(frozen=True)
class Schema:
    """Allowed and required keys of ``{"<type>": {...}}`` and of its ``links`` object."""

    root: str
    required: tuple = ()
    optional: tuple = ()
    types: dict[str, type] = field(default_factory=dict)
    links_required: tuple = ()
    links_optional: tuple = ()

    def parse(self, request: Request) -> dict:
        body = request.json()
        if not isinstance(body, dict) or self.root not in body:
            raise _fail("#", f"did not contain a required property of '{self.root}'")
        has_links = bool(self.links_required or self.links_optional)
        optional = self.optional + (("links",) if has_links else ())
        data = _check_object(body[self.root], self.root, self.required, optional, self.types)
        if has_links:
            _check_object(data.get("links", {}), "links", self.links_required, self.links_optional, {})
        return data
