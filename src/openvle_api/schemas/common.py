"""What every API body shares: the base schema, problem documents (RFC 9457), pages, examples."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict
from pydantic_core import PydanticCustomError

T = TypeVar("T")

UUID_EXAMPLE = "0193a5a0-7c1e-7d2a-8f00-1a2b3c4d5e6f"
TIME_EXAMPLE = "2026-03-01T09:00:00Z"


_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _date_time_text(value: object) -> object:
    """Let only a date-time through: a string such as 2026-03-01T09:00:00Z (or a datetime).

    pydantic would also read a number, or a string of one, as Unix seconds
    (`?since=0.5`), which the schema (`format: date-time`) does not allow.
    """
    if isinstance(value, datetime) or (isinstance(value, str) and _DATE_TIME.match(value)):
        return value
    raise PydanticCustomError(
        "datetime_type", "Input should be a date-time such as 2026-03-01T09:00:00Z"
    )


DateTime = Annotated[datetime, Strict(False), BeforeValidator(_date_time_text)]
"""A date-time as the schema says: RFC 3339 text, never a number."""


class Body(BaseModel):
    """Base of request bodies: no unknown fields, and types as the schema says.

    Strict: `true`/`false` only for booleans (not 0 or "yes"), whole numbers only for
    integers (not "24" or 24.0), strings only for strings; date-times are `DateTime`.
    """

    model_config = ConfigDict(extra="forbid", strict=True)


class Schema(BaseModel):
    """Base of response bodies: built from ORM rows."""

    model_config = ConfigDict(from_attributes=True)


class ProblemItem(BaseModel):
    """One invalid field: where it is and what is wrong with it."""

    loc: list[str | int] = Field(examples=[["body", "slug"]])
    msg: str = Field(examples=["must be 4-8 characters of a-z, 0-9, _ and -"])


class Problem(BaseModel):
    """An RFC 9457 problem; `detail` is meant to be shown to people as is."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:openvle:problem:vm_not_found",
                    "title": "Not found",
                    "status": 404,
                    "detail": f"VM {UUID_EXAMPLE} not found",
                    "instance": f"/api/v1/vms/{UUID_EXAMPLE}",
                }
            ]
        }
    )

    type: str = Field(description="A URN naming the kind of problem (stable, machine-readable).")
    title: str = Field(description="A short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong this time, for people.")
    instance: str | None = Field(default=None, description="The request path.")
    errors: list[ProblemItem] | None = Field(
        default=None, description="Validation problems, one per field (400 and 422)."
    )
    line: int | None = Field(
        default=None, description="Where a body that is not JSON breaks: line, from 1 (400)."
    )
    column: int | None = Field(
        default=None, description="Where a body that is not JSON breaks: column, from 1 (400)."
    )
    operation_id: str | None = Field(
        default=None, description="The operation holding a busy target (409 only)."
    )


class Page(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` as `cursor` for the next (null at the end)."""

    items: list[T]
    next_cursor: str | None = Field(examples=[None])
