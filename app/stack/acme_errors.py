"""The certificate request in plain words, without Qt: what the wizard's certificate step and the stack page show
while the edge (Caddy) asks the ACME server (Let's Encrypt, pebble) for the certificate of the public address.

- `explain(text, domain)`: an ACME server's or Caddy's error text as an `AcmeExplanation` (a stable `code`, the
  problem and what to do, in plain words). The first matching rule of `RULES` wins; an unknown text is shown
  as it is (shortened), never hidden. Codes: `dns` (the name does not resolve, or not to this server),
  `port-closed` (the ACME server could not connect: the port is closed or filtered), `port-taken` (another
  program holds the port on the server), `wrong-server` (another web server answered the challenge),
  `rate-limit`, `caa` (a CAA record forbids this CA), `rejected-name` (the CA will not issue for the name),
  `ca-unreachable` (the edge cannot reach the ACME server), `unknown`.
  The port named is 443 when the text shows a TLS-ALPN-01 challenge or `:443`, 80 for HTTP-01 (`http://`,
  `:80`), otherwise "80 or 443".
- `certificate_progress(lines, domain)`: the state of the request from the edge's log (Caddy's JSON lines, one
  object a line; other lines are ignored): `waiting` (nothing yet), `requesting`, `obtained`, or `failed`
  with the explanation of the last error (of a run of reports of the same failure, the first: the challenge's
  own report names its type, hence the port). A success after errors is `obtained`; an error after a success (a
  renewal that fails) is `failed`. Caddy's closing summary after every challenge failed ("no solvers available
  for remaining challenges") names no reason: it leaves the challenges' own explanation in place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

MAX_SHOWN = 300


@dataclass(frozen=True)
class AcmeExplanation:
    code: str
    problem: str
    action: str


@dataclass(frozen=True)
class Rule:
    code: str
    pattern: re.Pattern[str]
    problem: str  # format fields: {domain}, {port}
    action: str


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.IGNORECASE)


RULES: tuple[Rule, ...] = (
    Rule(
        "rate-limit",
        _rx(r"rateLimited", r"rate.?limit", r"too many (?:certificates|failed authorizations|new orders)"),
        "The certificate authority refused for now: too many certificates or failed attempts for {domain} "
        "recently (its rate limit).",
        "Nothing to change if the other messages are solved: the edge tries again on its own once the limit "
        "has passed (from an hour for failed attempts up to a week for new certificates).",
    ),
    Rule(
        "port-taken",
        _rx(r"address already in use", r"port is already allocated", r"bind: permission denied"),
        "Another program on the server already uses port {port}, so Pixel's edge cannot answer there.",
        "Stop that program (often another web server, such as nginx or Apache) or move it to another port, "
        "then restart the stack from the stack page.",
    ),
    Rule(
        "caa",
        _rx(r"\bcaa\b"),
        "A CAA record in the DNS of {domain} forbids this certificate authority from issuing for it.",
        "Add the certificate authority (e.g. letsencrypt.org) to the CAA record of the domain, or remove "
        "the record, at your DNS provider.",
    ),
    Rule(
        "dns",
        _rx(
            r"acme:error:dns",
            r"DNS problem",
            r"NXDOMAIN",
            r"no valid (?:A|AAAA|IP) (?:addresses|records)",
            r"SERVFAIL",
            r"no such host",
        ),
        "The certificate authority could not find {domain} in DNS, or it points somewhere else.",
        "Create (or correct) the A or AAAA record of {domain} so it points at this server, wait a few minutes "
        "for it to spread, and the edge tries again on its own.",
    ),
    Rule(
        "port-closed",
        _rx(
            r"acme:error:connection",
            r"connection refused",
            r"timeout during connect",
            r"i/o timeout",
            r"no route to host",
            r"connection reset",
            r"network is unreachable",
        ),
        "The certificate authority could not connect to this server on port {port}: the port is closed or "
        "blocked by a firewall.",
        "Open ports 80 and 443 (TCP) to the internet in the server's firewall and in your hosting provider's "
        "panel; the edge tries again on its own.",
    ),
    Rule(
        "wrong-server",
        _rx(r"acme:error:unauthorized", r"invalid response from", r"incorrect validation certificate"),
        "The certificate authority reached {domain}, but another web server answered instead of Pixel's edge.",
        "Make {domain} point at this server only (no old record left, no proxy or CDN in front while the "
        "certificate is requested), and stop any other web server on ports 80 and 443.",
    ),
    Rule(
        "rejected-name",
        _rx(r"rejectedIdentifier", r"policy forbids", r"acme:error:malformed.*identifier"),
        "The certificate authority will not issue a certificate for {domain}.",
        "Use a name under a domain you own at a public registrar (not .local, .test, or an IP address).",
    ),
    Rule(
        "ca-unreachable",
        _rx(r"fetching directory", r"dial tcp .*(?:acme|letsencrypt)", r"acme-v02.*timeout"),
        "The edge could not reach the certificate authority.",
        "Check that the server can make outgoing HTTPS connections (its firewall, a proxy), and the ACME "
        "directory URL in the stack's settings.",
    ),
)


def _port(text: str) -> str:
    low = text.lower()
    if "tls-alpn" in low or re.search(r":443\b", low):
        return "443"
    if "http-01" in low or "http://" in low or re.search(r":80\b", low):
        return "80"
    return "80 or 443"


def explain(text: str, domain: str) -> AcmeExplanation:
    """The plain-words explanation of an ACME or Caddy error text about `domain`."""
    for rule in RULES:
        if rule.pattern.search(text):
            fields = {"domain": domain, "port": _port(text)}
            return AcmeExplanation(rule.code, rule.problem.format(**fields), rule.action.format(**fields))
    shown = " ".join(text.split())
    if len(shown) > MAX_SHOWN:
        shown = shown[: MAX_SHOWN - 1] + "…"
    return AcmeExplanation(
        "unknown",
        f"The certificate request for {domain} failed: {shown}",
        "Check the edge's log on the stack page; the edge tries again on its own.",
    )


@dataclass(frozen=True)
class CertificateProgress:
    state: str  # waiting | requesting | obtained | failed
    message: str
    explanation: AcmeExplanation | None = None
    raw_error: str = ""  # the ACME server's own words, for the details


_OBTAINED = ("certificate obtained successfully", "certificate renewed successfully")
_STARTED = ("obtaining certificate", "trying to solve challenge", "renewing certificate", "acquiring lock")
# Caddy's summary once every challenge type it tried has failed, which names none of the reasons
_AGGREGATE = re.compile(r"no solvers available for remaining challenges", re.IGNORECASE)
_FAILED = ("could not get certificate from issuer", "challenge failed", "will retry", "job failed")


def _error_text(entry: dict[str, object]) -> str:
    parts = []
    for key in ("challenge_type", "problem_type", "error"):  # acmez's "challenge failed" has all three
        if entry.get(key):
            parts.append(str(entry[key]))
    problem = entry.get("problem")
    if isinstance(problem, dict):
        parts.extend(str(problem.get(k, "")) for k in ("type", "detail") if problem.get(k))
    return " ".join(parts)


def certificate_progress(lines: Iterable[str], domain: str) -> CertificateProgress:
    """Where the certificate request of `domain` stands, from the edge's log lines (oldest first)."""
    state = CertificateProgress("waiting", f"Waiting for the edge to ask for the certificate of {domain}…")
    for line in lines:
        start = line.find("{")
        if start < 0:
            continue
        try:
            entry = json.loads(line[start:])
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        listed = entry.get("identifiers")
        names = {str(entry.get(k, "")) for k in ("identifier", "subject")}
        names |= {str(n) for n in listed} if isinstance(listed, list) else set()
        error = _error_text(entry)
        if domain not in names and domain not in error:
            continue
        msg = str(entry.get("msg", "")).lower()
        if msg in _OBTAINED:
            state = CertificateProgress("obtained", f"The certificate of {domain} was issued: HTTPS works.")
        elif msg in _FAILED and error:
            if _AGGREGATE.search(error) and state.state == "failed":
                continue  # "every challenge failed": the challenges' own reports (above) say why
            why = explain(error, domain)
            same = state.explanation is not None and state.explanation.code == why.code
            if state.state != "failed" or not same:  # the first report of a failure has its details
                state = CertificateProgress("failed", why.problem, why, error)
        elif msg in _STARTED and state.state != "failed":
            state = CertificateProgress(
                "requesting", f"Asking the certificate authority for a certificate for {domain}…"
            )
    return state
