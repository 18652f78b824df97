"""Privacy rules applied before anything is stored.

- PII-looking query parameters (`email`, `token`, `password`, ... — `settings.pii_params`) are removed from the
  stored page URL, its query and the referrer, as is any parameter whose *value* is an e-mail address, and
  e-mail addresses in a URL path are replaced by `[email]`. The remaining parameters keep their original bytes.
- An e-mail address is refused as `user_id` (the tracker refuses it too; a hand-made request must not sneak one in).
- Do-Not-Track / Global Privacy Control: events carrying either signal are dropped for the sites that enable it
  (`settings.dnt_sites`, `*` = all sites); the decision is made in the pipeline.
- The visitor's own address, when a page echoes it, is replaced by `[ip]` in every text of the row (`scrub_row`:
  whatever string columns the row has, and custom properties holding it are removed) in any usual spelling
  (`ip_spelling`); `scrub_text` does the same for one text (e.g. a dead letter's payload).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
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


# --- the visitor's own address, wherever a page echoed it -------------------------------------------------

IP_MARK = "[ip]"

# Every spelling of an address lies inside one run of these characters (lower-cased). IPv4 octets are separated
# by `.`, `-`, `_` or `%2E` (dashed host names: ip-203-0-113-7); IPv6 groups by `:`, `%3A` or `-` (ipv6-literal
# host names), its last 32 bits possibly a dotted quad.
_RUN_CHARS = frozenset("0123456789abcdef:%._-")
_SEP = re.compile(r":|%3a|-|\.|_|%2e", re.IGNORECASE)
_V4_SEPS = frozenset({".", "-", "_", "%2e"})
_V6_SEPS = frozenset({":", "%3a", "-"})
_COLONS = frozenset({":", "%3a"})
_DIGITS = re.compile(r"[0-9]+")
_LONGEST_SPELLING = 11  # tokens: 8 groups plus an empty one for `::` at an edge, or 6 groups and 4 octets


def _longest_first(part: str) -> tuple[int, str]:
    return -len(part), part


@dataclass(frozen=True, slots=True)
class IpSpelling:
    """What the address is, for comparing any spelling found in a text: its 32-bit value (IPv4, also when
    given IPv4-mapped) and its 128-bit value (IPv6, or IPv4-mapped for an IPv4 address). The parts are literals
    (lower case) every spelling holds all of: a cheap test before looking closer."""

    v4: int | None
    v6: int | None
    v4_parts: frozenset[str]  # the octets in decimal
    v6_parts: tuple[
        frozenset[str], ...
    ]  # in full: the non-zero groups; with a dotted tail: groups 0-5, octets
    literal: str = ""  # not an address: matched as given
    part_sets: tuple[tuple[str, ...], ...] = ()  # the sets of parts, each longest (rarest) first

    def __post_init__(self) -> None:
        sets = (self.v4_parts, *self.v6_parts) if self.v4_parts else self.v6_parts
        # Longest first, then by text: the same order whatever order the set iterates in.
        ordered = tuple(tuple(sorted(parts, key=_longest_first)) for parts in sets if parts)
        object.__setattr__(self, "part_sets", ordered)

    @property
    def anchors(self) -> tuple[str, ...]:
        """Literals of which every spelling holds at least one (the longest of each set of parts)."""
        sets = (self.v4_parts, *self.v6_parts) if self.v4_parts else self.v6_parts
        return tuple({max(parts, key=len) for parts in sets if parts})

    def may_be_in(self, folded: str) -> bool:
        """False when the lower-cased `folded` cannot hold a spelling of the address."""
        if self.literal:
            return self.literal.lower() in folded
        for parts in self.part_sets:
            for part in parts:
                if part not in folded:
                    break
            else:
                return True
        return False


def _v6_parts(address: ipaddress.IPv6Address) -> tuple[frozenset[str], ...]:
    packed = address.packed
    groups = [format(int.from_bytes(packed[i : i + 2], "big"), "x") for i in range(0, 16, 2)]
    head = {g for g in groups[:6] if g != "0"}
    full = frozenset(head | {g for g in groups[6:] if g != "0"})
    return full, frozenset(head | {str(o) for o in packed[12:]})


_MAPPED_HEAD = frozenset({"ffff"})  # the non-zero groups 0-5 of every IPv4-mapped address (::ffff:a.b.c.d)


def _v4_spelling(ip: str) -> IpSpelling | None:
    """The spelling of `ip` when it is an IPv4 address in the canonical dotted form (four decimal octets
    0-255, no leading zeros: what a collector writes), computed without the `ipaddress` module; None for any
    other text (the caller then takes the general path). Equal to what the general path makes of it."""
    parts = ip.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        if not (0 < len(part) <= 3 and part.isascii() and part.isdigit()) or part[:1] == "0" != part:
            return None
        octet = int(part)
        if octet > 255:
            return None
        value = value << 8 | octet
    octets = frozenset(parts)
    high, low = value >> 16, value & 0xFFFF
    full = _MAPPED_HEAD | {format(g, "x") for g in (high, low) if g}
    return IpSpelling(value, 0xFFFF_0000_0000 | value, octets, (frozenset(full), _MAPPED_HEAD | octets))


@functools.lru_cache(maxsize=65_536)
def ip_spelling(ip: str) -> IpSpelling | None:
    """How to recognise the address `ip` (None for an empty or all-zero address). Recognised spellings: IPv4 with
    `.`, `-`, `_` or `%2E` between the octets and any leading zeros; IPv6 in full or compressed at any run of zero
    groups, any case, leading zeros, `:`, `%3A` or `-` between groups, its last 32 bits as a dotted quad; an IPv4
    address also as its IPv4-mapped IPv6 form and the reverse. Something that is not an address is matched
    literally when it is at least 7 characters long (shorter, it would match by accident)."""
    fast = _v4_spelling(ip)  # the usual case, a few times cheaper than the `ipaddress` module
    return fast if fast is not None else _any_spelling(ip)


def _any_spelling(ip: str) -> IpSpelling | None:
    """`ip_spelling` of any text, through the `ipaddress` module."""
    try:
        address = ipaddress.ip_address(ip.partition("%")[0].strip("[]"))
    except ValueError:
        return IpSpelling(None, None, frozenset(), (), literal=ip) if len(ip) >= 7 else None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv4Address):
        mapped = ipaddress.IPv6Address(0xFFFF_0000_0000 | int(address))
        octets = frozenset(str(o) for o in address.packed)
        return IpSpelling(int(address), int(mapped), octets, _v6_parts(mapped))
    if not int(address):
        return None
    return IpSpelling(None, int(address), frozenset(), _v6_parts(address))


def _v4_value(tokens: list[str]) -> int | None:
    value = 0
    for token in tokens:
        if not token.isascii() or not token.isdigit() or int(token) > 255:
            return None
        value = value << 8 | int(token)
    return value


def _v6_value(tokens: list[str], seps: list[str]) -> int | None:
    """The value of groups `tokens` joined by `seps` ("" tokens where `::` was written), or None."""
    if len(tokens) >= 5 and all(s in (".", "%2e") for s in seps[-3:]):  # a dotted tail
        if _v4_value(tokens[-4:]) is None:
            return None
        head, head_seps = tokens[:-4], seps[:-3]
        text = ":".join(head) + ":" + ".".join(tokens[-4:])
    else:
        head, head_seps = tokens, seps
        text = ":".join(head)
    if any(s not in _V6_SEPS for s in head_seps) or any(len(t) > 4 for t in head):
        return None
    try:
        return int(ipaddress.IPv6Address(text))  # `::` (two empty tokens at an edge, one inside) as written
    except ValueError:
        return None


def _spans(run: str, spelling: IpSpelling) -> list[tuple[int, int]]:
    """Where in `run` (one _RUN match) the address is written: (start, end) offsets, not overlapping."""
    starts, ends, seps = [0], [], []
    for sep in _SEP.finditer(run):
        ends.append(sep.start())
        starts.append(sep.end())
        seps.append(sep.group().lower())
    ends.append(len(run))
    tokens = [run[a:b] for a, b in zip(starts, ends, strict=True)]
    folded = run.lower()
    found: list[tuple[int, int]] = []
    i = 0
    n = len(tokens)
    after_group = [k + 1 < n and tokens[k + 1] != "" and seps[k] in _COLONS for k in range(n)]
    while i < n:
        best = None
        if spelling.v4 is not None and i + 3 < n and all(s in _V4_SEPS for s in seps[i : i + 3]):
            # the octets may touch letters (id203.0.113.7): only digits count, as a boundary
            first = _DIGITS.search(tokens[i][::-1])
            last = _DIGITS.match(tokens[i + 3])
            if first is not None and first.start() == 0 and last is not None:
                head, tail = first.group()[::-1], last.group()
                if _v4_value([head, *tokens[i + 1 : i + 3], tail]) == spelling.v4:
                    best = (ends[i] - len(head), starts[i + 3] + len(tail)), i + 3
        if spelling.v6 is not None and best is None:
            # not a part of a longer address: another group written before (1:2001:db8::1) or after
            if i and tokens[i - 1] != "" and seps[i - 1] in _COLONS:
                i += 1
                continue
            for j in range(min(n - 1, i + _LONGEST_SPELLING), i + 1, -1):  # the longest spelling first
                if after_group[j]:
                    continue
                text = folded[starts[i] : ends[j]]
                if not any(all(part in text for part in parts) for parts in spelling.v6_parts):
                    continue
                # letters may touch the edges (c2001:db8::1): the edge groups are their last/first four
                group, group_seps = tokens[i : j + 1], seps[i:j]
                cut_start, cut_end = max(0, len(group[0]) - 4), min(4, len(group[-1]))
                group[0], group[-1] = group[0][cut_start:], group[-1][:cut_end]
                if _v6_value(group, group_seps) == spelling.v6:
                    best = (starts[i] + cut_start, ends[j] - len(tokens[j]) + cut_end), j
                    break
        if best is None:
            i += 1
            continue
        found.append(best[0])
        i = best[1] + 1
    return found


def _scrub(text: str, spelling: IpSpelling) -> str:
    folded = text.lower()
    if not spelling.may_be_in(folded):
        return text
    if spelling.literal:
        return text.replace(spelling.literal, IP_MARK)
    # The runs around each occurrence of an anchor: only they can hold a spelling.
    runs: set[tuple[int, int]] = set()
    size = len(folded)
    for anchor in spelling.anchors:
        pos = folded.find(anchor)
        while pos != -1:
            start, end = pos, pos + len(anchor)
            while start and folded[start - 1] in _RUN_CHARS:
                start -= 1
            while end < size and folded[end] in _RUN_CHARS:
                end += 1
            runs.add((start, end))
            pos = folded.find(anchor, end)
    out: list[str] = []
    last = 0
    for start, end in sorted(runs):
        if not spelling.may_be_in(folded[start:end]):
            continue
        for a, b in _spans(text[start:end], spelling):
            out += (text[last : start + a], IP_MARK)
            last = start + b
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def scrub_text(text: str, ip: str) -> str:
    """`text` with every spelling of the address `ip` replaced by `[ip]` (e.g. a dead letter's payload)."""
    spelling = ip_spelling(ip)
    if spelling is None or not text:
        return text
    return _scrub(text, spelling)


def scrub_row(row: dict[str, Any], ip: str) -> None:
    """Removes the request's own address from every text a row holds, in place: each string column (whatever
    the row's columns are: the list is not written down anywhere, so a new column cannot be forgotten) gets
    `[ip]` instead, and a custom property whose name or value holds it is removed. The raw IP never reaches
    the store even when a page sends it itself (an echoed address in a URL, a title, an event name, ...)."""
    spelling = ip_spelling(ip)
    if spelling is None:
        return
    props = row.get("props")
    texts = [value for value in row.values() if type(value) is str]
    if props:
        texts.extend(props)
        texts.extend(props.values())
    blob = "\n".join(texts)
    if _scrub(blob, spelling) is blob:
        return  # the usual case: one join, a few substring tests, and a look at the few runs around them
    for name, value in row.items():
        if type(value) is str and value:
            row[name] = _scrub(value, spelling)
    if props:
        for key in [k for k, v in props.items() if _scrub(k, spelling) != k or _scrub(v, spelling) != v]:
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
