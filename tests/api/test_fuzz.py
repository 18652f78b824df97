"""schemathesis against /api/openapi.json: generated requests (valid and not) never get a 5xx."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.api.conftest import Api

EXAMPLES_PER_OPERATION = 20


def test_no_server_errors_on_any_operation(api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", api.client.app)
    state = api.client.app.state.pixel
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            # A fresh admin token per case: a generated logout may revoke the one it used, or end every
            # session of the user (a new generation).
            token, _ = state.tokens.issue_access(1, "admin", state.meta.user(1)["generation"])
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            assert response.status_code < 500, (
                case.method,
                case.formatted_path,
                case.query,
                case.body,
                response.text,
            )
            if response.status_code >= 400:
                assert set(response.json()) == {"error", "detail"}, response.text

        run()
        checked.append(f"{operation.method.upper()} {operation.path}")
    assert len(checked) >= 35
