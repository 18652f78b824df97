"""Privacy rules applied before anything is stored.

- PII-looking query parameters (`email`, `token`, `password`, ... — `settings.pii_params`) are removed from the
  stored page URL, its query and the referrer, as is any parameter whose *value* is an e-mail address, and
  e-mail addresses in a URL path are replaced by `[email]`. The remaining parameters keep their original bytes.
- An e-mail address is refused as `user_id` (the tracker refuses it too; a hand-made request must not sneak one in).
- Do-Not-Track / Global Privacy Control: events carrying either signal are dropped for the sites that enable it
  (`settings.dnt_sites`, `*` = all sites); the decision is made in the pipeline.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_plus

DEFAULT_PII_PARAMS: tuple[str, ...] = (
    "email",
    "e-mail",
    "e_mail",
    "mail",
    "email_address",
    "emailaddress",
    "user_email",
    "token",
    "access_token",
    "id_token",
    "refresh_token",
    "auth",
    "auth_token",
    "authorization",
    "jwt",
    "password",
    "passwd",
    "pwd",
    "pass",
    "secret",
    "client_secret",
    "api_key",
    "apikey",
    "otp",
    "pin",
    "session",
    "sessionid",
    "session_id",
    "phone",
    "phone_number",
    "tel",
    "ssn",
    "first_name",
    "last_name",
    "firstname",
    "lastname",
    "fullname",
    "full_name",
)

_PII_PROP_NAMES = frozenset(
    {"email", "e-mail", "password", "passwd", "token", "access_token", "phone", "ssn"}
)

EMAIL_RE = re.compile(r"[^\s@/?#&=:;,<>\"']+@[^\s@/?#&=:;,<>\"']+\.[A-Za-z]{2,}")
_EMAIL_ENCODED_RE = re.compile(r"[^\s@/?#&=:;,<>\"']+(?:@|%40)[^\s@/?#&=:;,<>\"']+\.[A-Za-z]{2,}", re.I)


def is_email(value: str) -> bool:
    return "@" in value and EMAIL_RE.search(value) is not None


def clean_user_id(user_id: str) -> str:
    """'' when the id is (or contains) an e-mail address; the id unchanged otherwise."""
    return "" if user_id and is_email(user_id) else user_id


def redact_emails(text: str) -> str:
    """Replaces e-mail addresses (also %40-encoded ones) in a path or title by `[email]`."""
    return _EMAIL_ENCODED_RE.sub("[email]", text)


def clean_props(props: dict[str, str]) -> None:
    """Drops custom properties whose value is an e-mail address, or whose name is a PII name (in place)."""
    for key in [
        k for k, v in props.items() if ("@" in v and EMAIL_RE.search(v)) or k.lower() in _PII_PROP_NAMES
    ]:
        del props[key]


_IP_FIELDS = ("url", "path", "query", "title", "referrer", "user_id", "visitor_id", "session_id")


def scrub_ip(row: dict[str, Any], ip: str) -> None:
    """Removes the request's own address wherever the page echoed it (a URL, the title, an id, a property), so
    the raw IP never reaches the store even when a site sends it itself."""
    for name in _IP_FIELDS:
        value = row.get(name)
        if value and ip in value:
            row[name] = value.replace(ip, "[ip]")
    props = row.get("props")
    if props:
        for key in [k for k, v in props.items() if ip in v or ip in k]:
            del props[key]


def clean_query(query: str, pii: frozenset[str]) -> tuple[str, dict[str, str]]:
    """(query without PII parameters, {lower-case name: first decoded value}) — the query's raw bytes are kept
    for every parameter that stays."""
    if not query:
        return "", {}
    params: dict[str, str] = {}
    kept: list[str] = []
    changed = False
    for segment in query.split("&"):
        if not segment:
            changed = True
            continue
        raw_name, _, raw_value = segment.partition("=")
        name = (
            unquote_plus(raw_name).strip().lower() if "%" in raw_name or "+" in raw_name else raw_name.lower()
        )
        value = unquote_plus(raw_value) if "%" in raw_value or "+" in raw_value else raw_value
        if name in pii or ("@" in value and EMAIL_RE.search(value)):
            changed = True
            continue
        kept.append(segment)
        if name not in params:
            params[name] = value
    return ("&".join(kept) if changed else query), params


def clean_url(url: str, pii: frozenset[str]) -> tuple[str, str, dict[str, str]]:
    """(url without PII, its cleaned query, the query's parameters). Fragments of the `#a=b&c=d` kind (OAuth
    implicit flows put tokens there) are cleaned like a query."""
    if not url:
        return "", "", {}
    base, hash_, fragment = url.partition("#")
    base, q, query = base.partition("?")
    if "@" in base or "%40" in base:
        scheme, sep, rest = base.partition("://")
        if sep:
            authority, slash, path = rest.partition("/")
            if "@" in authority:  # credentials in the URL (user:password@host)
                authority = authority.rpartition("@")[2]
            base = f"{scheme}://{authority}{slash}{_EMAIL_ENCODED_RE.sub('[email]', path)}"
        else:
            base = _EMAIL_ENCODED_RE.sub("[email]", base)
    query, params = clean_query(query, pii)
    if fragment and "=" in fragment:
        fragment, _ = clean_query(fragment, pii)
    out = base
    if q and query:
        out += "?" + query
    if hash_ and fragment:
        out += "#" + fragment
    return out, query, params
