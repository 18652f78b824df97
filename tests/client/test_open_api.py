"""`pixel.app.client.connect.open_api`, Qt-free, as the main window uses it: a profile's API reached with
the admin password from a real Secret Service, against a real `pixel serve`; a missing password, a remote
server that is down (offline: the cache is served meanwhile) and one whose SSH port refuses (said in plain
words), and `store_secrets` of onboarding putting the password where `open_api` finds it."""

from __future__ import annotations

import pytest

from pixel.app import secret_store
from pixel.app.client import Unreachable
from pixel.app.client.connect import ApiConnection, engine_target, is_remote, open_api
from pixel.app.profiles import Profile
from pixel.app.stack.errors import StackError
from pixel.app.stack.onboarding import store_secrets
from pixel.app.stack.tunnel import SSHTunnel
from tests.conftest import free_port


def test_the_password_from_the_keyring_signs_in(live_api, secret_service) -> None:
    profile = Profile("Live", api_url=live_api.url, username=live_api.username)
    assert store_secrets("Live", live_api.password) == ""
    try:
        with open_api(profile) as connection:
            assert isinstance(connection, ApiConnection) and connection.tunnel is None
            assert connection.base_url == live_api.url and not is_remote(profile)
            assert [s["domain"] for s in connection.client.sites()] == list(live_api.sites)
        with pytest.raises(RuntimeError, match="client has been closed"):
            connection.client.sites()
        connection.close()  # a second close is harmless
    finally:
        secret_store.delete_profile("Live")


def test_a_missing_password_names_the_account_and_the_profile(live_api, secret_service) -> None:
    profile = Profile("Nopass", api_url=live_api.url, username="owner")
    with pytest.raises(secret_store.KeyringUnavailable) as err:
        open_api(profile)
    assert str(err.value) == "No password for 'owner' of 'Nopass' in the keyring."


def test_a_given_password_needs_no_keyring(live_api) -> None:
    profile = Profile("Given", api_url=live_api.url, username=live_api.username)
    with open_api(profile, password=live_api.password) as connection:
        assert len(connection.client.sites()) == len(live_api.sites)


def test_a_remote_server_that_is_down(tmp_path) -> None:
    """SSH port closed: offline (the app's default) still gives a connection whose requests say
    `Unreachable` (the dashboard serves its cache); asked to connect now, the reason in plain words."""
    port = free_port()  # nothing listens there
    profile = Profile(
        "Remote", engine=f"ssh://deploy@127.0.0.1:{port}", api_url="http://127.0.0.1:8082", username="admin"
    )
    assert is_remote(profile) and engine_target(profile).kind == "ssh"
    with open_api(profile, password="pw") as connection:
        assert isinstance(connection.tunnel, SSHTunnel)
        assert connection.base_url == connection.tunnel.local_url != profile.api_url
        with pytest.raises(Unreachable):
            connection.client.sites()
    with pytest.raises(StackError) as err:
        open_api(profile, password="pw", offline_ok=False)
    assert (err.value.code, err.value.problem) == (
        "ssh-unreachable",
        f"Cannot reach the SSH server 127.0.0.1 port {port}: Unable to connect to port {port} on 127.0.0.1",
    )
    assert (
        err.value.action == "Check the host name and port, and that the server is switched on and reachable."
    )
