"""OpenAPI for generated clients: short stable operationIds, and the retryable statuses declared (issue 12)."""

import re

import pytest

from tests.conftest import openapi_document

SPEC = openapi_document()
OPERATIONS = {(method.upper(), path): operation for path, item in SPEC["paths"].items()
              for method, operation in item.items()}
# Answered without the database: the liveness probe and the static instrument catalogue.
NO_DATABASE = {("GET", "/healthz"), ("GET", "/v1/instruments"), ("GET", "/v1/instruments/{code}")}


def test_every_operation_id_is_tag_dash_name_and_unique():
    ids = [operation["operationId"] for operation in OPERATIONS.values()]
    assert [i for i in ids if not re.fullmatch(r"[a-z]+-[a-z_]+", i)] == []
    assert len(ids) == len(set(ids))
    assert OPERATIONS["POST", "/v1/me/scores"]["operationId"] == "scores-create_my_score"
    for operation in OPERATIONS.values():
        assert operation["operationId"].split("-")[0] == operation["tags"][0]


@pytest.mark.parametrize("key", sorted(OPERATIONS), ids=" ".join)
def test_retryable_statuses_are_declared_with_retry_after(key):
    operation = OPERATIONS[key]
    expected = ({"429"} if operation.get("security") else set()) | ({"503"} if key not in NO_DATABASE else set())
    assert expected <= operation["responses"].keys()
    for code in expected:
        response = operation["responses"][code]
        assert "Retry-After" in response["headers"]
        if key == ("POST", "/v1/auth/token") and code == "429":  # the OAuth token endpoint's lockout: an RFC 6749 error body
            assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OAuthErrorBody"}
            continue
        assert response["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}


def test_authenticated_routes_are_the_rate_limited_ones():
    # The test above derives 429 from `security`: make sure that is every route but the public ones.
    public = {key for key, operation in OPERATIONS.items() if not operation.get("security")}
    assert public == {("GET", "/healthz"), ("GET", "/readyz"), ("POST", "/v1/auth/login"),
                      ("POST", "/v1/auth/refresh"), ("POST", "/v1/auth/logout"), ("POST", "/v1/auth/enroll")}


@pytest.mark.parametrize(("name", "model"), [("ScoreCreate", "api.scores.schemas"), ("PlanCreate", "api.plans.schemas"),
                                             ("SessionCreate", "api.sessions.schemas")])
def test_the_main_request_bodies_carry_an_example_of_the_right_shape(name, model):
    import importlib

    schema = SPEC["components"]["schemas"][name]
    [example] = schema["examples"]
    # Field by field the example is what the model takes (the dates are the contract's, so whether they are in
    # the future depends on the day the test runs).
    cls = getattr(importlib.import_module(model), name)
    assert set(example) <= set(cls.model_fields)
    assert {field_name for field_name, field in cls.model_fields.items() if field.is_required()} <= set(example)


def test_no_two_routes_match_the_same_request():
    """api.app.ROUTERS puts the hot paths first; that is safe only while the order decides nothing: every route's
    path, with an id for each parameter, is matched by that route alone."""
    from fastapi.routing import APIRoute
    from starlette.routing import Match

    from api.app import ROUTERS

    routes = [route for router in ROUTERS for route in router.routes if isinstance(route, APIRoute)]
    assert len(routes) > 50
    for route in routes:
        path = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000001", route.path)
        for method in route.methods:
            scope = {"type": "http", "path": path, "method": method, "root_path": "", "headers": [],
                     "query_string": b""}
            matching = [other.path for other in routes if other.matches(scope)[0] == Match.FULL]
            assert matching == [route.path], (method, path)
