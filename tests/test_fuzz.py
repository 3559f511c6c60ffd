"""Every operation of the OpenAPI document fuzzed with schemathesis (security.md: no 5xx, answers match the schema).

Cases are drawn from each operation's strategy, positive and negative, and sent through the same httpx client as
every other test (the app and its database live in the test's event loop), as an admin and as a patient.
"""

import copy

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import openapi_document

SCHEMA = schemathesis.openapi.from_dict(copy.deepcopy(openapi_document()))
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
# Negative cases need something to make invalid: a body or a parameter (other than the auth header).
NEGATABLE = [op for op in OPERATIONS if op.body or op.path_parameters or op.query or op.headers]
CASES = [(op, GenerationMode.POSITIVE) for op in OPERATIONS] + [(op, GenerationMode.NEGATIVE) for op in NEGATABLE]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 12


@pytest.mark.parametrize("caller", ["admin", "patient_user"])
@pytest.mark.parametrize(("operation", "mode"), CASES, ids=lambda v: getattr(v, "value", None) or f"{v.method.upper()} {v.path}")
@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_fuzz(client, world, operation, caller, mode, data):
    case = data.draw(operation.as_strategy(generation_mode=mode))
    kwargs = case.as_transport_kwargs(base_url="http://calmtrack.test", headers=world.actor(caller).headers)
    content, form = kwargs.get("content"), kwargs.get("data")
    if isinstance(form, bytes | str):  # raw bodies travel as content in httpx
        content, form = form, None
    response = await client.request(
        kwargs["method"], kwargs["url"], params=kwargs.get("params"), headers=kwargs.get("headers"),
        content=content, json=kwargs.get("json"), data=form, files=kwargs.get("files"),
    )
    case.validate_response(response, checks=CHECKS)
