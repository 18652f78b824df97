"""Onboarding without Qt (`pixel.app.stack.onboarding`), the code the setup wizard and `pixel stack install
--site` share: a real compact stack on the local engine (the Pixel image built offline, tests/stack/conftest),
its first site created through the stack's real API, the snippet, a second run that changes nothing, and
the failures in plain words: a bad domain or time zone (nothing installed, the engine not even contacted),
an API that refuses the site (the admin account kept in the error), an API that does not answer, a stack
installed before with no admin account given."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stack_helpers import PIXEL_TAG, free_port, leftovers, unique_project

from pixel.app.client import ApiClient
from pixel.app.client.connect import open_api
from pixel.app.stack.engine import EngineTarget
from pixel.app.stack.errors import StackError
from pixel.app.stack.manage import open_stack
from pixel.app.stack.onboarding import (
    InstallOutcome,
    SiteNotCreated,
    check_domain,
    create_first_site,
    endpoints,
    install_site,
    public_host,
)
from pixel.app.stack.progress import Progress
from pixel.app.stack.provisioner import Credentials
from pixel.app.stack.spec import API_PORT, COLLECTOR_PORT

VALUES = {
    "PIXEL_IMAGE": PIXEL_TAG,
    "PIXEL_COLLECTOR_BIND": "127.0.0.1",
    "PIXEL_COLLECTOR_PORT": "0",  # the engine picks free ports: other tests and programs run here
    "PIXEL_API_PORT": "0",
    "PIXEL_WORKERS": "1",
}
NO_ENGINE = EngineTarget("unix:///nonexistent/docker.sock")  # contacting it would fail as "engine-down"


@pytest.fixture(scope="module")
def installed(docker_client, pixel_image) -> Iterator[tuple[str, InstallOutcome, list[Progress]]]:
    project = unique_project("pxo")
    events: list[Progress] = []
    try:
        outcome = install_site(
            EngineTarget(), project, "  Shop.Example ", timezone="Europe/Paris", values=VALUES,
            progress=events.append,
        )  # fmt: skip
        yield project, outcome, events
    finally:
        with contextlib.suppress(Exception):
            open_stack(docker_client, project).uninstall(delete_data=True)
    assert leftovers(docker_client, project) == []


def test_install_site_creates_the_site_and_gives_the_snippet(installed, docker_client) -> None:
    project, outcome, events = installed
    ports = open_stack(docker_client, project).status().containers[0].ports
    api, collector = f"http://127.0.0.1:{ports[API_PORT]}", f"http://127.0.0.1:{ports[COLLECTOR_PORT]}"
    profile = outcome.profile
    assert (profile.name, profile.engine, profile.project) == (project, "local", project)
    assert (profile.api_url, profile.collector_url, profile.domain, profile.site_id) == (
        api, collector, "shop.example", 1
    )  # fmt: skip
    assert (profile.username, profile.tls_dir, profile.ssh_key, profile.host_key) == ("admin", "", "", "")
    assert not profile.ssh_key_locked and outcome.password not in repr(profile)
    assert (outcome.site_id, outcome.api_base, outcome.api_url, outcome.tunnel) == (1, api, api, None)
    assert outcome.snippet == (
        f'<script defer src="{collector}/pixel.js" data-site="shop.example" '
        f'data-endpoint="{collector}/track"></script>'
    )
    assert f"container {project}-pixel-1" in outcome.changed and outcome.keyring_problem == ""
    steps = [e.step for e in events]
    assert steps[0] == "connect" and steps[-2:] == ["site", "done"] and "tunnel" not in steps
    assert events[-1] == Progress("done", 1.0, "Pixel is installed")
    # the profile opens the API (open_api), signed in as the admin the install made
    with open_api(profile, password=outcome.password) as connection:
        assert connection.tunnel is None and connection.base_url == api
        [site] = connection.client.sites()
        assert (site["id"], site["domain"], site["timezone"]) == (1, "shop.example", "Europe/Paris")


def test_a_second_run_with_the_admin_changes_nothing(installed) -> None:
    project, first, _ = installed
    admin = Credentials(first.profile.username, first.password)
    again = install_site(
        EngineTarget(), project, "shop.example", timezone="Europe/Paris", values=VALUES, admin=admin
    )
    assert again.changed == ()
    assert (again.profile, again.site_id, again.snippet, again.password) == (
        first.profile, 1, first.snippet, first.password
    )  # fmt: skip


def test_a_second_run_without_an_admin_says_what_to_do(installed) -> None:
    project, _, _ = installed
    with pytest.raises(StackError) as err:
        install_site(EngineTarget(), project, "blog.example", values=VALUES)
    assert not isinstance(err.value, SiteNotCreated) and err.value.code == "admin-exists"
    assert err.value.problem == (
        f"The stack {project!r} was installed before: no new admin account was made, so the site cannot be "
        "created with one."
    )
    assert err.value.action == (
        "Create the site with the admin account made at the first install: in the desktop app, or through "
        "the API (POST /api/sites)."
    )


def test_a_refused_site_keeps_the_admin_account_in_the_error(installed) -> None:
    project, first, _ = installed
    wrong = Credentials(first.profile.username, "not-the-password")
    with pytest.raises(SiteNotCreated) as err:
        install_site(EngineTarget(), project, "blog.example", values=VALUES, admin=wrong)
    assert err.value.admin == wrong and err.value.code == "site-refused"
    assert (
        err.value.problem
        == "Pixel's API refused to create the site blog.example: wrong username or password."
    )
    assert err.value.action == (
        "Check the domain and that the account is an admin of all sites, then install again with the same "
        "admin account: the installed stack is kept."
    )
    with open_api(first.profile, password=first.password) as connection:
        assert [s["domain"] for s in connection.client.sites()] == ["shop.example"]


def test_an_api_that_does_not_answer_is_said_in_plain_words() -> None:
    base = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with ApiClient(base, "admin", "pw", timeout=5) as client, pytest.raises(StackError) as err:
        create_first_site(client, "shop.example", "UTC", "http://127.0.0.1:1")
    assert (err.value.code, err.value.problem) == (
        "api-unreachable",
        f"Pixel's API at {base} did not answer.",
    )
    assert err.value.action == (
        "Check that the stack is running and healthy (`pixel stack status`, or the app's Stack page), then "
        "install again with the same admin account: the installed stack is kept."
    )


BAD_DOMAINS = [
    "", "   ", "example", "https://example.com", "example.com/shop", "exa mple.com", "-shop.example",
    "shop-.example", "shop..example", "shop_1.example", "shöp.example", "shop.example.", ".example",
    "shop.example:123456", "a" * 64 + ".example", "<script>.example", "shop.example\nevil.example",
    "shop.example\x00", "b." * 126 + "example",
]  # fmt: skip


@pytest.mark.parametrize("text", BAD_DOMAINS)
def test_a_bad_domain_installs_nothing(text: str) -> None:
    with pytest.raises(StackError) as err:
        install_site(NO_ENGINE, "pxbad", text, values=VALUES)
    assert (err.value.code, err.value.problem) == (
        "bad-domain",
        f"{text.strip()!r} is not a website's domain.",
    )
    assert err.value.action == (
        "Type the domain as in the site's address, e.g. example.com: letters, digits, dots and dashes, "
        "without https:// or a path."
    )


def test_a_bad_time_zone_or_profile_name_installs_nothing() -> None:
    with pytest.raises(StackError) as err:
        install_site(NO_ENGINE, "pxbad", "shop.example", timezone="Mars/Olympus_Mons")
    assert (err.value.code, err.value.problem) == ("bad-timezone", "'Mars/Olympus_Mons' is not a time zone.")
    assert err.value.action == "Choose a time zone from the list, e.g. Europe/Paris or UTC."
    with pytest.raises(ValueError, match="profile name 'no/slash'"):
        install_site(NO_ENGINE, "pxbad", "shop.example", name="no/slash")


def test_good_domains_are_normalised_as_the_api_stores_them() -> None:
    assert check_domain(" Shop.Example ") == "shop.example"
    assert check_domain("sub.shop-1.example:8443") == "sub.shop-1.example:8443"
    assert check_domain("a" * 63 + ".example") == "a" * 63 + ".example"


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.text(alphabet="abcXYZ09-._:/ é\n", max_size=24))
def test_a_domain_accepted_here_is_accepted_by_the_api(text: str) -> None:
    """What the wizard and the CLI let through is what the API stores: no stack installed for a site the
    API would then refuse. (The API also takes a bare host name such as `localhost`; onboarding asks for a dot.)"""
    from pydantic import ValidationError

    from pixel.server.api.models import SiteIn

    try:
        domain = check_domain(text)
    except StackError as exc:
        assert exc.code == "bad-domain"
        with contextlib.suppress(ValidationError):
            assert "." not in SiteIn(domain=text).domain
        return
    assert SiteIn(domain=text).domain == domain and "." in domain


def test_public_host_of_an_engine_address() -> None:
    assert public_host("") == "127.0.0.1"
    assert public_host("ssh://deploy@stats.example:2222") == "stats.example"
    assert public_host("tcp://[2001:db8::1]:2376") == "[2001:db8::1]"


def test_the_addresses_of_the_api_and_the_collector() -> None:
    """From the spec's ports as the engine published them: the collector as visitors reach it (the
    server's name for a remote engine; the HTTPS edge's domain when the stack has one)."""
    ports = {API_PORT: 18082, COLLECTOR_PORT: 18081}
    assert endpoints(EngineTarget(), ports, {}) == ("http://127.0.0.1:18082", "http://127.0.0.1:18081")
    ssh = EngineTarget("ssh://deploy@stats.example:2222")
    assert endpoints(ssh, ports, {}) == ("http://127.0.0.1:18082", "http://stats.example:18081")
    edge = {"PIXEL_DOMAIN": "stats.example.com", "PIXEL_HTTPS_PORT": "443"}
    assert endpoints(ssh, {API_PORT: 18082}, edge) == ("http://127.0.0.1:18082", "https://stats.example.com")
    assert endpoints(ssh, {API_PORT: 18082}, {**edge, "PIXEL_HTTPS_PORT": "8443"})[1] == (
        "https://stats.example.com:8443"
    )
