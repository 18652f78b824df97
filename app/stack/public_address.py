"""The public address of a server install, without Qt: the wizard's "Public address" step and the stack page
call these and show their messages.

- `validate_domain(text)`: the owner's input as a host name for a certificate (IDN converted to punycode with the
  `idna` codec), or a `StackError` saying in plain words what is wrong and what to type instead. Refused: a
  scheme or path, a port, an IP address, a wildcard, a single label, a name over 253 characters, a label over 63
  characters or with characters other than letters, digits and inner hyphens.
- `check_dns(domain, expected, resolver=...)`: does the name resolve to the server's address? The resolver is
  injected (tests never use real DNS); the answer names the record to create when it does not.
- `certificate_status(pems, now=...)`: issuer, expiry, last renewal and whether to warn (14 days before expiry)
  from the edge's certificate files; `read_edge_certificates(container, domain)` reads them from the edge's
  volume through the Docker API (no tool needed inside the image).
"""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import re
import socket
import tarfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .errors import StackError

MAX_NAME = 253
MAX_LABEL = 63
WARN_BEFORE = dt.timedelta(days=14)
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_EXAMPLE = "Type only the name, e.g. stats.example.com."

Resolver = Callable[[str], Sequence[str]]  # name -> its addresses (A and AAAA); raises OSError when none


def _bad(problem: str, action: str = _EXAMPLE) -> StackError:
    return StackError(problem, action, code="bad-domain")


def validate_domain(text: str) -> str:
    """The host name to request a certificate for, lower-case, IDN as punycode."""
    raw = text.strip()
    if not raw:
        raise _bad("No domain name was given.")
    if "://" in raw or raw.lower().startswith(("http:", "https:")):
        raise _bad(
            f"{raw!r} is a web address, not a domain name.", "Leave out http:// or https://. " + _EXAMPLE
        )
    if any(c in raw for c in "/?#@"):
        raise _bad(
            f"{raw!r} has a path or other parts after the name.", "Leave out everything after the name."
        )
    if any(c.isspace() for c in raw):
        raise _bad(f"{raw!r} contains spaces.")
    try:
        ipaddress.ip_address(raw.strip("[]"))
        raise _bad(
            f"{raw!r} is an IP address. Certificates for the public are issued for names, not addresses.",
            "Create a DNS record (A) for a name pointing at this address, and type that name.",
        )
    except ValueError:
        pass
    if ":" in raw:
        raise _bad(f"{raw!r} has a port.", "Leave out the port: the edge answers on 80 and 443.")
    if "*" in raw:
        raise _bad(
            f"{raw!r} is a wildcard. The edge needs one exact name (a wildcard needs a DNS challenge).",
            _EXAMPLE,
        )
    labels = raw.rstrip(".").split(".")
    if len(labels) < 2:
        raise _bad(f"{raw!r} is a single word: a public name has at least two parts, like stats.example.com.")
    ascii_labels = []
    for part in labels:
        if not part:
            raise _bad(f"{raw!r} has an empty part (two dots in a row, or a leading dot).")
        try:  # Python's `idna` codec (IDNA 2003, as browsers map names): one label at a time
            label = part.encode("idna").decode("ascii").lower()
        except UnicodeError:
            label = part.lower() if part.isascii() else ""
            if not label:
                raise _bad(f"The part {part!r} of {raw!r} cannot be written as a domain name.") from None
        if len(label) > MAX_LABEL:
            raise _bad(f"The part {label[:20]!r}… is {len(label)} characters long; at most {MAX_LABEL}.")
        if not _LABEL.fullmatch(label):
            raise _bad(
                f"The part {label!r} of {raw!r} may only hold letters, digits and hyphens (not at its ends)."
            )
        ascii_labels.append(label)
    ascii_name = ".".join(ascii_labels)
    if len(ascii_name) > MAX_NAME:
        raise _bad(f"The name is {len(ascii_name)} characters long; at most {MAX_NAME} are allowed.")
    if ascii_labels[-1].isdigit():
        raise _bad(f"{raw!r} ends in a number: the last part of a public name is a word like com or org.")
    return ascii_name


@dataclass(frozen=True)
class DnsCheck:
    ok: bool
    addresses: tuple[str, ...]  # what the name resolves to now
    message: str  # plain words, for the wizard
    action: str = ""  # what record to create, when not ok


def system_resolver(name: str) -> list[str]:
    infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_dns(domain: str, expected: Iterable[str], resolver: Resolver = system_resolver) -> DnsCheck:
    """Whether `domain` resolves to one of the server's `expected` addresses (IPv4 or IPv6)."""
    want = {ipaddress.ip_address(a) for a in expected}
    kinds = " or ".join(sorted({"A" if a.version == 4 else "AAAA" for a in want})) or "A"
    shown = ", ".join(sorted(str(a) for a in want))
    record = (
        f"Create a DNS record of type {kinds} named {domain} with the value {shown} at your DNS provider."
    )
    try:
        found = tuple(dict.fromkeys(resolver(domain)))
    except (OSError, UnicodeError):
        found = ()
    if not found:
        return DnsCheck(
            False, (), f"{domain} does not resolve to any address yet.", record + " Then check again."
        )
    got = set()
    for a in found:
        try:
            got.add(ipaddress.ip_address(a))
        except ValueError:
            continue
    if got & want:
        return DnsCheck(True, found, f"{domain} points at this server ({', '.join(found)}).")
    return DnsCheck(
        False,
        found,
        f"{domain} points at {', '.join(found)}, not at this server ({shown}).",
        f"Change the DNS record of {domain} to {shown} ({kinds}). Changes can take a while to spread; "
        "then check again.",
    )


@dataclass(frozen=True)
class CertificateStatus:
    domain: str
    issuer: str  # the issuing CA's organisation or common name
    not_before: dt.datetime  # when the certificate in use was issued: the last (re)newal
    not_after: dt.datetime
    days_left: float
    warn: bool  # less than 14 days left: renewal keeps failing
    message: str


def certificate_status(domain: str, pems: Iterable[bytes], now: dt.datetime) -> CertificateStatus | None:
    """The status of the newest certificate for `domain` among `pems` (PEM files), None when there is none."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    best = None
    for pem in pems:
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError:
            continue
        try:
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            dns = names.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            dns = []
        if domain not in dns:
            continue
        if best is None or cert.not_valid_before_utc > best.not_valid_before_utc:
            best = cert
    if best is None:
        return None
    attrs = best.issuer.get_attributes_for_oid(
        NameOID.ORGANIZATION_NAME
    ) or best.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    issuer = str(attrs[0].value) if attrs else best.issuer.rfc4514_string()
    left = best.not_valid_after_utc - now
    days = left.total_seconds() / 86400
    warn = left < WARN_BEFORE
    until = best.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC")
    if left.total_seconds() <= 0:
        message = f"The certificate of {domain} expired on {until}: browsers refuse the collector."
    elif warn:
        message = (
            f"The certificate of {domain} expires on {until} ({days:.0f} days) and has not been renewed: "
            "check that the name still points at this server and that ports 80 and 443 are open."
        )
    else:
        message = f"Certificate by {issuer}, valid until {until}."
    return CertificateStatus(
        domain, issuer, best.not_valid_before_utc, best.not_valid_after_utc, days, warn, message
    )


def read_edge_certificates(container: object, domain: str) -> list[bytes]:
    """The PEM certificates Caddy keeps for `domain` in the edge's volume (/data/caddy/certificates/<ca>/<name>/),
    read with the Docker API's archive call; [] when there are none yet."""
    from docker.errors import NotFound

    try:
        chunks, _ = container.get_archive("/data/caddy/certificates")  # type: ignore[attr-defined]
    except NotFound:
        return []
    blob = io.BytesIO(b"".join(chunks))
    out = []
    with tarfile.open(fileobj=blob) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if member.isfile() and len(parts) >= 2 and parts[-2] == domain and parts[-1] == f"{domain}.crt":
                fh = tar.extractfile(member)
                if fh is not None:
                    out.append(fh.read())
    return out
