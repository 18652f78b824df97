"""The stack spec (compact and standard topologies) and the compose files generated from it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pixel.app.stack import compose
from pixel.app.stack.spec import (
    LABEL_CONFIG_HASH,
    LABEL_PROJECT,
    LABEL_SERVICE,
    LABEL_SPEC_VERSION,
    Mount,
    Service,
    SpecError,
    StackSpec,
    compact,
    config_hash,
    pixel_version,
    standard,
    without_profiles,
)

REPO = Path(__file__).resolve().parents[2]


def test_compact_resolves_to_one_pixel_serve_container():
    spec = compact().resolve({"PIXEL_IMAGE": "pixel-analytics:test", "PIXEL_API_PORT": "9000"})
    assert [s.name for s in spec.services] == ["pixel"]
    pixel = spec.service("pixel")
    assert pixel.image == "pixel-analytics:test"
    assert pixel.command[:2] == ("pixel", "serve")
    assert pixel.env["PIXEL_STORE"] == "chdb"
    assert pixel.env["PIXEL_DATA_DIR"] == "/data"
    assert [(p.container, p.host, p.host_ip) for p in pixel.ports] == [
        (8081, "8081", "0.0.0.0"),
        (8082, "9000", "127.0.0.1"),  # the API is never published beyond loopback
    ]
    assert pixel.mounts == (Mount("data", "/data"),)
    assert pixel.mem_limit == "1g" and pixel.restart == "unless-stopped" and pixel.init is True
    assert spec.network_name == "pixel_default"
    assert spec.volume_name("data") == "pixel_data"
    assert spec.container_name("pixel") == "pixel-pixel-1"


def test_labels_carry_compose_project_and_spec_version():
    spec = compact("shop").resolve()
    labels = spec.service_labels(spec.service("pixel"))
    assert labels[LABEL_PROJECT] == "shop"
    assert labels[LABEL_SERVICE] == "pixel"
    assert labels[LABEL_SPEC_VERSION] == "1"
    assert labels[LABEL_CONFIG_HASH] == config_hash(spec.service("pixel"))
    assert "com.docker.compose.config-hash" not in labels  # compose must never adopt our containers


def test_config_hash_changes_with_the_service():
    a = compact().resolve().service("pixel")
    b = compact().resolve({"PIXEL_MEMORY": "2g"}).service("pixel")
    assert config_hash(a) == config_hash(compact().resolve().service("pixel"))
    assert config_hash(a) != config_hash(b)


def test_standard_topology_orders_clickhouse_first_and_needs_a_password():
    with pytest.raises(SpecError, match="CLICKHOUSE_PASSWORD must be set"):
        standard().resolve()
    spec = standard().resolve({"CLICKHOUSE_PASSWORD": "s3cret"})
    assert [s.name for s in spec.start_order()] == ["clickhouse", "collector", "shipper"]
    ch = spec.service("clickhouse")
    assert ch.image == "clickhouse/clickhouse-server:25.8"
    assert ch.env["CLICKHOUSE_PASSWORD"] == "s3cret"
    shipper = spec.service("shipper")
    assert shipper.env["PIXEL_STORE"] == "clickhouse"
    assert shipper.env["PIXEL_CLICKHOUSE_URL"] == "http://clickhouse:8123"
    assert shipper.env["PIXEL_CLICKHOUSE_PASSWORD"] == "s3cret"
    assert shipper.depends_on == ("clickhouse",)
    assert [(p.container, p.host_ip) for p in shipper.ports] == [(8082, "127.0.0.1")]
    collector = spec.service("collector")
    assert collector.command == ("pixel", "collect")
    assert {m.volume for m in collector.mounts} == {"data", "geoip"}
    assert [s.name for s in without_profiles(spec).services] == ["clickhouse", "collector", "shipper"]
    assert [s.name for s in standard(geoip=False).services] == ["clickhouse", "collector", "shipper"]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: compact("Bad Name"), "stack name 'Bad Name'"),
        (lambda: compact().resolve({"NOPE": "1"}), r"unknown setting\(s\) \['NOPE'\]"),
        (
            lambda: StackSpec("x", "t", (Service("a", "img", mounts=(Mount("v", "/v"),)),), ()),
            "mounts undeclared volume 'v'",
        ),
        (lambda: StackSpec("x", "t", (Service("a", "img", depends_on=("b",)),), ()), "unknown service 'b'"),
        (lambda: StackSpec("x", "t", (Service("a", "img"), Service("a", "img")), ()), "duplicate service"),
        (lambda: compact().service("clickhouse"), "no service 'clickhouse'"),
    ],
)
def test_bad_specs_are_refused_with_a_clear_message(make, message):
    with pytest.raises(SpecError, match=message):
        make()


def test_committed_compose_files_match_the_spec():
    stale = compose.stale_files(REPO / "compose")
    assert stale == [], f"regenerate with `pixel stack compose`: {stale}"


def test_compose_file_content():
    data = yaml.safe_load(compose.render_compose(compact()))
    svc = data["services"]["pixel"]
    assert data["name"] == "pixel"
    assert svc["image"] == "${PIXEL_IMAGE:-pixel-analytics:" + pixel_version() + "}"
    assert svc["ports"] == [
        "${PIXEL_COLLECTOR_BIND:-0.0.0.0}:${PIXEL_COLLECTOR_PORT:-8081}:8081",
        "127.0.0.1:${PIXEL_API_PORT:-8082}:8082",
    ]
    assert svc["volumes"] == ["data:/data"]
    assert svc["healthcheck"]["test"][:2] == ["CMD", "python3"]
    assert svc["healthcheck"]["interval"] == "5s"
    assert svc["labels"] == {
        "io.pixel.stack": "pixel",
        "io.pixel.spec-version": "1",
        "io.pixel.topology": "compact",
    }
    full = yaml.safe_load(compose.render_compose(standard()))
    assert full["services"]["shipper"]["depends_on"] == {"clickhouse": {"condition": "service_healthy"}}
    assert full["services"]["shipper"]["environment"]["PIXEL_CLICKHOUSE_PASSWORD"] == (
        "${CLICKHOUSE_PASSWORD:?set CLICKHOUSE_PASSWORD in .env}"
    )
    assert "geoipupdate" not in full["services"]  # the shipper fetches GeoIP itself; the key is a file
    assert full["services"]["clickhouse"]["ulimits"] == {"nofile": 262144}
    assert sorted(full["volumes"]) == ["clickhouse", "data", "geoip"]


def test_env_example_lists_every_variable_once():
    text = compose.render_env_example(compact(), standard())
    assignments = [line.split("=", 1)[0] for line in text.splitlines() if line and not line.startswith("#")]
    assert len(assignments) == len(set(assignments))
    assert set(assignments) == {v.name for v in standard().variables}
    assert "CLICKHOUSE_PASSWORD=change-me" in text.splitlines()
