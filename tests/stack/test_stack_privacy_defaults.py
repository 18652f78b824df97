"""The Docker stack's privacy defaults, as the spec (and the compose files made from it) give them: events for
unregistered sites are dropped in every Pixel container, and the image's data folder is the service user's."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixel.app.stack.spec import compact, standard

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("spec", [compact(), standard()], ids=["compact", "standard"])
def test_unregistered_sites_are_dropped_by_default(spec) -> None:
    secret = {"CLICKHOUSE_PASSWORD": "x"} if spec.topology == "standard" else {}
    pixel = {s.name for s in spec.services if "PIXEL_DATA_DIR" in s.env}  # the containers running Pixel
    assert pixel == ({"pixel"} if spec.topology == "compact" else {"collector", "shipper"})
    for values, expected in (
        ({}, "drop"),
        ({"PIXEL_UNREGISTERED_SITES": "keep"}, "keep"),
    ):  # .env may keep them
        resolved = spec.resolve({**secret, **values})
        assert {resolved.service(name).env["PIXEL_UNREGISTERED_SITES"] for name in pixel} == {expected}


def test_the_compose_files_carry_it() -> None:
    for name in ("docker-compose.yml", "docker-compose.standard.yml"):
        assert (
            "PIXEL_UNREGISTERED_SITES: ${PIXEL_UNREGISTERED_SITES:-drop}"
            in (REPO / "compose" / name).read_text()
        )
    assert "PIXEL_UNREGISTERED_SITES=drop" in (REPO / "compose" / ".env.example").read_text()


def test_the_image_runs_as_its_user_with_a_private_data_folder() -> None:
    dockerfile = (REPO / "packaging" / "Dockerfile").read_text()
    assert "chown pixel:pixel /data && chmod 0700 /data" in dockerfile
    assert "\nUSER pixel\n" in dockerfile
