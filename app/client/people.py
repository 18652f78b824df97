"""Owner tasks of the API without Qt: people (users, grants, disable, password reset), the caller's own API
tokens, and the admins' SQL console with its result as CSV.

Contract:
- Every function takes an authenticated `ApiClient` and blocks (call from a worker thread); an API refusal
  is an `ApiRequestError` whose `detail` is the server's reason, word for word (the SQL guard's included).
- `sites=None` means every site (the API's "all sites"); a list limits the user to those site ids.
- `reset_password` makes the new password here (`new_password`: letters and digits, long enough for the
  API's minimum) and returns it: the caller shows it once; it is never logged or stored by this module.
- `csv_bytes` is RFC 4180 CSV in UTF-8 with CRLF line ends, a header row of column names, every field
  quoted only when it must be; None is an empty field, lists/dicts are JSON, floats use `repr`.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import string
from dataclasses import dataclass
from typing import Any

from pixel.app.client.api import ApiClient

PASSWORD_LENGTH = 20
_ALPHABET = string.ascii_letters + string.digits


def new_password(length: int = PASSWORD_LENGTH) -> str:
    """A random password for a reset (the API wants at least 12 characters)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(max(length, 12)))


def me(client: ApiClient) -> dict[str, Any]:
    """The signed-in user: id, username, role ("admin"/"viewer"), sites (None = all), disabled."""
    return dict(client.get("/api/auth/me"))


def users(client: ApiClient) -> list[dict[str, Any]]:
    """The users this admin may manage, by id."""
    return client.every("/api/users", {"sort": "id"})


def add_user(client: ApiClient, username: str, role: str, sites: list[int] | None) -> dict[str, Any]:
    """A new user; its generated password is in `password` of the answer (shown once)."""
    return dict(
        client.request("POST", "/api/users", body={"username": username, "role": role, "sites": sites})
    )


def set_sites(client: ApiClient, user_id: int, sites: list[int] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"all_sites": True} if sites is None else {"sites": sites}
    return dict(client.request("PATCH", f"/api/users/{user_id}", body=body))


def set_access(client: ApiClient, user_id: int, role: str, sites: list[int] | None) -> dict[str, Any]:
    """The user's role and site grants in one request: both change or neither (the API checks the whole
    change first: the last admin, grants beyond the caller's own, unknown sites)."""
    body: dict[str, Any] = {"role": role, **({"all_sites": True} if sites is None else {"sites": sites})}
    return dict(client.request("PATCH", f"/api/users/{user_id}", body=body))


def set_role(client: ApiClient, user_id: int, role: str) -> dict[str, Any]:
    return dict(client.request("PATCH", f"/api/users/{user_id}", body={"role": role}))


def set_disabled(client: ApiClient, user_id: int, disabled: bool) -> dict[str, Any]:
    return dict(client.request("PATCH", f"/api/users/{user_id}", body={"disabled": disabled}))


def reset_password(client: ApiClient, user_id: int) -> str:
    """A new password for the user (its sessions end); returned to be shown once."""
    password = new_password()
    client.request("PATCH", f"/api/users/{user_id}", body={"password": password})
    return password


def delete_user(client: ApiClient, user_id: int) -> None:
    client.request("DELETE", f"/api/users/{user_id}")


def tokens(client: ApiClient) -> list[dict[str, Any]]:
    """The signed-in user's API tokens (name, prefix, created, last used), never their secret."""
    return client.every("/api/tokens", {"sort": "id"})


def create_token(client: ApiClient, name: str) -> dict[str, Any]:
    """A new read-only API token; its secret is in `token` of the answer (shown once)."""
    return dict(client.request("POST", "/api/tokens", body={"name": name}))


def revoke_token(client: ApiClient, token_id: int) -> None:
    client.request("DELETE", f"/api/tokens/{token_id}")


@dataclass(frozen=True)
class SqlResult:
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    truncated: bool
    truncated_reason: str | None
    elapsed_ms: float


def run_sql(client: ApiClient, site_id: int, query: str, max_rows: int = 1000) -> SqlResult:
    """One console query over the site's events; a refusal raises `ApiRequestError` (code "sql_refused")
    with the guard's reason in `detail`."""
    answer = client.request(
        "POST", "/api/sql", body={"site_id": site_id, "query": query, "max_rows": max_rows}
    )
    return SqlResult(
        [c["name"] for c in answer["columns"]],
        [c["type"] for c in answer["columns"]],
        [list(r) for r in answer["rows"]],
        bool(answer["truncated"]),
        answer.get("truncated_reason"),
        float(answer.get("elapsed_ms", 0.0)),
    )


def cell_text(value: Any) -> str:
    """How one value reads in a table cell, a CSV field or a TSV copy."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def csv_bytes(columns: list[str], rows: list[list[Any]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell_text(v) for v in row])
    return out.getvalue().encode("utf-8")


def tsv_text(rows: list[list[str]]) -> str:
    """Cells as tab-separated lines (what a spreadsheet pastes); tabs and line breaks inside become spaces."""
    return "\n".join(
        "\t".join(c.replace("\t", " ").replace("\r", " ").replace("\n", " ") for c in r) for r in rows
    )
