"""Request and response bodies (pydantic), shared by the routers and the OpenAPI document."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pixel.server.api.query.filters import parse_filters
from pixel.server.typedfields import CURRENCIES

Role = Literal["admin", "viewer"]
Id = Annotated[int, Field(ge=1, le=2**53)]
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::\d{1,5})?$"
)
_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(?::\d{1,5})?$")
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_TIMEZONES = available_timezones()


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(BaseModel):
    items: list[Any]
    total: int
    page: int
    limit: int


# -- auth -----------------------------------------------------------------------------------------


class LoginIn(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class RefreshIn(Strict):
    refresh_token: str | None = Field(default=None, max_length=200)


class LogoutIn(Strict):
    refresh_token: str | None = Field(default=None, max_length=200)
    all: bool = False


class PasswordIn(Strict):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(min_length=12, max_length=1024)


class UserOut(BaseModel):
    id: int
    username: str
    role: Role
    sites: list[int] | None
    disabled: bool


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    user: UserOut


class UserIn(Strict):
    username: str
    role: Role = "viewer"
    sites: list[Id] | None = None
    password: str | None = Field(default=None, min_length=12, max_length=1024)

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not _USERNAME.match(value):
            raise ValueError("1-64 letters, digits, _ . @ -")
        return value


class UserPatch(Strict):
    role: Role | None = None
    sites: list[Id] | None = None
    all_sites: bool = False  # set to clear the site limit (sites=null cannot say that)
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=12, max_length=1024)

    @model_validator(mode="after")
    def _one_grant(self) -> UserPatch:
        if self.all_sites and self.sites is not None:
            raise ValueError("give either sites or all_sites, not both")
        return self


class UserCreated(UserOut):
    password: str | None = None  # only when generated: shown once


class ApiTokenIn(Strict):
    name: str = Field(min_length=1, max_length=100)


class ApiTokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: float
    last_used_at: float | None


class ApiTokenCreated(ApiTokenOut):
    token: str


# -- sites ----------------------------------------------------------------------------------------


class SiteFields(Strict):
    name: str | None = Field(default=None, max_length=200)
    timezone: str | None = None
    allowed_origins: list[str] | None = None
    honour_dnt: bool | None = None
    honour_gpc: bool | None = None
    excluded_paths: list[str] | None = None
    excluded_ips: list[str] | None = None
    retention_days: int | None = Field(default=None, ge=0, le=36500)
    currency: str | None = Field(
        default=None, max_length=8, description="reporting currency (ISO 4217, e.g. EUR); '' for none"
    )

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None if value is None else ""
        code = value.strip().upper()
        if code not in CURRENCIES:
            raise ValueError(f"{value!r} is not an ISO 4217 currency code such as EUR")
        return code

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        if value is not None and value not in _TIMEZONES:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)")
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str] | None) -> list[str] | None:
        for origin in value or []:
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(f"{origin!r} is not an origin like https://example.com")
        return value

    @field_validator("excluded_paths")
    @classmethod
    def _paths(cls, value: list[str] | None) -> list[str] | None:
        for path in value or []:
            if not path.startswith("/") or len(path) > 500:
                raise ValueError(f"{path!r} must be a path (glob) starting with /")
        return value

    @field_validator("excluded_ips")
    @classmethod
    def _ips(cls, value: list[str] | None) -> list[str] | None:
        out = []
        for item in value or []:
            try:
                out.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR range") from None
        return out if value is not None else None


class SiteIn(SiteFields):
    domain: str
    timezone: str | None = "UTC"

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip().lower()
        if not _DOMAIN.match(value):
            raise ValueError("a host name such as example.com (letters, digits, dots, dashes)")
        return value


class SiteOut(BaseModel):
    id: int
    domain: str
    name: str
    timezone: str
    allowed_origins: list[str]
    honour_dnt: bool
    honour_gpc: bool
    excluded_paths: list[str]
    excluded_ips: list[str]
    retention_days: int
    created_at: float
    currency: str = ""  # the reporting currency (ISO 4217), '' for none


class Snippet(BaseModel):
    site_id: int
    domain: str
    html: str
    extended_html: str = ""  # the same tag with the extended build (routers/sites.py, `snippet`)
    difference: str = ""


# -- goals ----------------------------------------------------------------------------------------


class GoalIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["page", "event"]
    page_pattern: str | None = Field(default=None, max_length=500)
    event_name: str | None = Field(default=None, max_length=200)
    prop_key: str | None = Field(default=None, max_length=100)
    prop_value: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _shape(self) -> GoalIn:
        if self.kind == "page" and not (self.page_pattern and self.page_pattern.startswith("/")):
            raise ValueError("a page goal needs page_pattern starting with / (* matches anything)")
        if self.kind == "event" and not self.event_name:
            raise ValueError("an event goal needs event_name")
        if self.kind == "page" and (self.event_name or self.prop_key):
            raise ValueError("a page goal takes no event_name or prop_key")
        return self


class GoalPatch(Strict):
    """A goal's changed fields (PATCH): merged over the stored goal, the result validated as a GoalIn; a
    field sent as null clears it (a page goal becoming an event goal drops its page_pattern)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: Literal["page", "event"] | None = None
    page_pattern: str | None = Field(default=None, max_length=500)
    event_name: str | None = Field(default=None, max_length=200)
    prop_key: str | None = Field(default=None, max_length=100)
    prop_value: str | None = Field(default=None, max_length=500)


class GoalOut(GoalIn):
    model_config = ConfigDict(extra="ignore")
    id: int
    site_id: int


class FunnelStep(GoalIn):
    """A funnel step: like a goal (a page pattern or an event, optionally with a property)."""

    name: str | None = Field(default=None, max_length=200)  # type: ignore[assignment]


# -- dashboards -----------------------------------------------------------------------------------

ReportKind = Literal["summary", "timeseries", "breakdown", "realtime", "goals", "funnel", "retention"]
ChartKind = Literal["number", "line", "bar", "table", "pie", "map", "funnel", "cohort"]


class Position(Strict):
    x: int = Field(ge=0, le=100)
    y: int = Field(ge=0, le=10_000)
    w: int = Field(ge=1, le=100)
    h: int = Field(ge=1, le=100)


class Widget(Strict):
    id: str | None = Field(default=None, max_length=64)
    title: str = Field(default="", max_length=200)
    report: ReportKind
    params: dict[str, str | int | float | bool | list[str]] = Field(default_factory=dict)
    filters: list[list[str]] = Field(default_factory=list)
    chart: ChartKind
    position: Position

    @field_validator("filters")
    @classmethod
    def _filters(cls, value: list[list[str]]) -> list[list[str]]:
        from pixel.server.api.errors import ApiError

        try:
            parse_filters(value)
        except ApiError as exc:
            raise ValueError(exc.detail) from None
        return value


class DashboardIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    widgets: list[Widget] = Field(default_factory=list, max_length=100)


class DashboardOut(BaseModel):
    id: int
    site_id: int
    name: str
    widgets: list[Widget]
    created_at: float
    updated_at: float


# -- SQL console ----------------------------------------------------------------------------------


class SqlIn(Strict):
    site_id: Id
    query: str = Field(min_length=1, max_length=100_000)
    max_rows: int = Field(default=1000, ge=1, le=10_000)
