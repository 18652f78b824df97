"""The ACME server's and Caddy's error texts in plain words (app/stack/acme_errors.py): a table of texts as Let's
Encrypt (boulder), pebble and Caddy write them, each mapped to its code and exact message; and the certificate
request's progress read from the edge's JSON log lines."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixel.app.stack.acme_errors import certificate_progress, explain

D = "stats.example.com"

DNS_PROBLEM = (
    "The certificate authority could not find stats.example.com in DNS, or it points somewhere else."
)
CLOSED_443 = (
    "The certificate authority could not connect to this server on port 443: the port is closed or blocked "
    "by a firewall."
)
CLOSED_80 = CLOSED_443.replace("443", "80")
TAKEN_443 = "Another program on the server already uses port 443, so Pixel's edge cannot answer there."
RATE = (
    "The certificate authority refused for now: too many certificates or failed attempts for stats.example.com "
    "recently (its rate limit)."
)
WRONG = "The certificate authority reached stats.example.com, but another web server answered instead of Pixel's edge."

TABLE = [
    (
        "HTTP 400 urn:ietf:params:acme:error:dns - DNS problem: NXDOMAIN looking up A for stats.example.com - "
        "check that a DNS record exists for this domain",
        "dns",
        DNS_PROBLEM,
    ),
    (
        "DNS problem: SERVFAIL looking up CAA for example.com - the domain's nameservers may be malfunctioning",
        "caa",
        "A CAA record in the DNS of stats.example.com forbids this certificate authority from issuing for it.",
    ),
    ("no valid A records found for stats.example.com; no valid AAAA records found", "dns", DNS_PROBLEM),
    (
        "tls-alpn-01 urn:ietf:params:acme:error:connection 203.0.113.7: Connection refused",
        "port-closed",
        CLOSED_443,
    ),
    (
        "HTTP 400 urn:ietf:params:acme:error:connection - 203.0.113.7: Fetching "
        "http://stats.example.com/.well-known/acme-challenge/x1: Timeout during connect (likely firewall problem)",
        "port-closed",
        CLOSED_80,
    ),
    ("dial tcp 203.0.113.7:443: i/o timeout", "port-closed", CLOSED_443),
    (
        "urn:ietf:params:acme:error:connection 203.0.113.7: Connection refused",
        "port-closed",
        CLOSED_443.replace("port 443", "port 80 or 443"),
    ),
    (
        "Error starting userland proxy: listen tcp4 0.0.0.0:443: bind: address already in use",
        "port-taken",
        TAKEN_443,
    ),
    (
        "driver failed programming external connectivity: Bind for 0.0.0.0:80 failed: port is already allocated",
        "port-taken",
        TAKEN_443.replace("443", "80"),
    ),
    (
        "HTTP 429 urn:ietf:params:acme:error:rateLimited - too many certificates (5) already issued for this "
        "exact set of domains in the last 168h0m0s",
        "rate-limit",
        RATE,
    ),
    ("too many failed authorizations recently", "rate-limit", RATE),
    (
        "HTTP 403 urn:ietf:params:acme:error:unauthorized - 203.0.113.7: Invalid response from "
        "http://stats.example.com/.well-known/acme-challenge/x1: 404",
        "wrong-server",
        WRONG,
    ),
    (
        "HTTP 400 urn:ietf:params:acme:error:rejectedIdentifier - Error creating new order :: Cannot issue for "
        '"stats.example.test": Domain name does not end with a valid public suffix (TLD)',
        "rejected-name",
        "The certificate authority will not issue a certificate for stats.example.com.",
    ),
    (
        "registering account with ACME server: fetching directory https://acme-v02.api.letsencrypt.org/"
        "directory: dial tcp: lookup acme-v02.api.letsencrypt.org: no such host",
        "dns",  # the edge's own DNS fails: said as a DNS problem, first rule that matches
        DNS_PROBLEM,
    ),
    (
        "provisioning: fetching directory https://acme.internal/dir: EOF",
        "ca-unreachable",
        "The edge could not reach the certificate authority.",
    ),
    (
        "something nobody has seen before",
        "unknown",
        "The certificate request for stats.example.com failed: something nobody has seen before",
    ),
]


@pytest.mark.parametrize(("text", "code", "problem"), TABLE, ids=[c for _, c, _ in TABLE])
def test_error_texts_in_plain_words(text: str, code: str, problem: str) -> None:
    why = explain(text, D)
    assert (why.code, why.problem) == (code, problem)
    assert why.action


def test_actions_name_the_record_and_the_ports() -> None:
    assert explain("DNS problem: NXDOMAIN", D).action == (
        "Create (or correct) the A or AAAA record of stats.example.com so it points at this server, wait a few "
        "minutes for it to spread, and the edge tries again on its own."
    )
    assert explain("Connection refused", D).action == (
        "Open ports 80 and 443 (TCP) to the internet in the server's firewall and in your hosting provider's "
        "panel; the edge tries again on its own."
    )


def test_an_unknown_error_is_shown_shortened_on_one_line() -> None:
    why = explain("x\n" * 400, D)
    assert why.code == "unknown" and "\n" not in why.problem
    assert why.problem.endswith("…") and len(why.problem) < 400


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(max_size=400))
def test_any_text_is_explained(text: str) -> None:
    why = explain(text, D)
    assert why.problem and why.action and why.code


def _log(msg: str, level: str = "info", **fields: object) -> str:
    return json.dumps({"level": level, "ts": 1.7e9, "logger": "tls.obtain", "msg": msg, **fields})


def test_progress_waiting_requesting_obtained() -> None:
    assert certificate_progress([], D).state == "waiting"
    start = [
        _log("obtaining certificate", identifier=D),
        "not json",
        _log("obtaining certificate", identifier="x.org"),
    ]
    assert certificate_progress(start, D).message == (
        "Asking the certificate authority for a certificate for stats.example.com…"
    )
    done = certificate_progress([*start, _log("certificate obtained successfully", identifier=D)], D)
    assert (done.state, done.message) == (
        "obtained",
        "The certificate of stats.example.com was issued: HTTPS works.",
    )


def test_progress_failure_keeps_the_challenges_own_report() -> None:
    lines = [
        _log("obtaining certificate", identifier=D),
        _log(
            "challenge failed",
            "error",
            identifier=D,
            challenge_type="tls-alpn-01",
            problem={
                "type": "urn:ietf:params:acme:error:connection",
                "detail": "203.0.113.7: Connection refused",
            },
        ),
        _log(
            "could not get certificate from issuer",
            "error",
            identifier=D,
            error="HTTP 400 urn:ietf:params:acme:error:connection - 203.0.113.7: Connection refused",
        ),
        _log("will retry", "error", error=f"[{D}] Obtain: solving challenge: connection refused", attempt=1),
    ]
    progress = certificate_progress(lines, D)
    assert (progress.state, progress.message) == ("failed", CLOSED_443)
    assert "tls-alpn-01" in progress.raw_error
    # a different failure later replaces it; a success later wins
    later = [
        *lines,
        _log("could not get certificate from issuer", "error", identifier=D, error="DNS problem: NXDOMAIN"),
    ]
    assert certificate_progress(later, D).message == DNS_PROBLEM
    assert (
        certificate_progress([*later, _log("certificate obtained successfully", identifier=D)], D).state
        == "obtained"
    )


def test_a_renewal_that_fails_after_a_success_is_a_failure() -> None:
    lines = [
        _log("certificate obtained successfully", identifier=D),
        _log("could not get certificate from issuer", "error", identifier=D, error="HTTP 429 rateLimited"),
    ]
    assert certificate_progress(lines, D).message == RATE


def test_caddys_closing_summary_leaves_the_challenges_reason_in_place() -> None:
    """After every challenge type failed, Caddy reports the attempt with a summary that names no reason ("no
    solvers available for remaining challenges", Caddy 2.6's text): the challenge's own report stays shown.
    acmez's "challenge failed" line carries the problem's type in `problem_type`, read with the detail."""
    lines = [
        _log("trying to solve challenge", identifier=D, challenge_type="tls-alpn-01"),
        _log(
            "challenge failed",
            "error",
            identifier=D,
            challenge_type="tls-alpn-01",
            status_code=400,
            problem_type="urn:ietf:params:acme:error:connection",
            error="Error getting validation data",
        ),
        _log(
            "could not get certificate from issuer",
            "error",
            identifier=D,
            error=f"[{D}] solving challenges: {D}: no solvers available for remaining challenges "
            "(configured=[http-01 tls-alpn-01] offered=[http-01 dns-01 tls-alpn-01] remaining=[dns-01]) "
            "(order=https://pebble:14000/my-order/x) (ca=https://pebble:14000/dir)",
        ),
    ]
    progress = certificate_progress(lines, D)
    assert (progress.state, progress.message) == ("failed", CLOSED_443)
    assert progress.raw_error == (
        "tls-alpn-01 urn:ietf:params:acme:error:connection Error getting validation data"
    )
    # the summary alone (no challenge report before it) is still shown, as it is
    alone = certificate_progress(lines[2:], D)
    assert alone.state == "failed" and alone.explanation is not None and alone.explanation.code == "unknown"
