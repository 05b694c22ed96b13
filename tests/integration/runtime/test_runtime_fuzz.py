"""The runtime API fuzzed from its own /openapi.json (schemathesis, valid and invalid requests) and with
hypothesis-made raw bodies (random JSON, wrong types, huge strings, unicode, missing fields).

A real `agentfleet-runtime` process (rules model, memory store, caller auth on) must answer every request
with something below 500 and log no unhandled exception.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.fakes.runtime import RuntimeProcess, rules_config

pytestmark = pytest.mark.integration

API_KEY = "fuzz-caller-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
EXAMPLES = 150  # per (operation, mode); hypothesis may stop early once it has exhausted a small space
RAW_EXAMPLES = 250
MIN_REQUESTS = 200  # for the raw fuzz test alone; the schemathesis tests add up to 6 x EXAMPLES more
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    workdir = tmp_path_factory.mktemp("fuzz-runtime")
    keys = workdir / "keys"
    keys.mkdir()
    (keys / "caller").write_text(API_KEY + "\n")
    config = rules_config(
        state={"store": "memory", "maxTurns": 5},
        access={"apiKeysDir": str(keys)},
        server={"maxRequestBytes": 65_536, "maxMessageChars": 4_000},
    )
    process = RuntimeProcess(config, workdir, "fuzz").start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def api_schema(runtime: RuntimeProcess) -> Any:
    document = httpx.get(f"{runtime.url}/openapi.json", timeout=10).json()
    return schemathesis.openapi.from_dict(document)


def assert_log_clean(runtime: RuntimeProcess) -> None:
    problems = []
    for line in runtime.logs().split("\n"):  # not splitlines(): U+2028 and friends may sit inside a JSON line
        if not line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            problems.append(line)  # anything not a JSON log line (a bare traceback) is a failure
            continue
        if entry.get("level") in ("error", "critical") or "exc" in entry:
            problems.append(line)
    assert not problems, "\n".join(problems[:20])


def post_operations(schema_document: dict[str, Any]) -> list[str]:
    return sorted(path for path, item in schema_document["paths"].items() if "post" in item)


def test_the_schema_has_the_post_endpoints_fuzzed_here(runtime: RuntimeProcess) -> None:
    document = httpx.get(f"{runtime.url}/openapi.json", timeout=10).json()
    assert post_operations(document) == ["/v1/chat/completions", "/v1/responses", "/v1/sessions/{session_id}/messages"]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses", "/v1/sessions/{session_id}/messages"])
def test_schemathesis_requests_never_get_a_5xx(
    runtime: RuntimeProcess, api_schema: Any, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path]["POST"]
    statuses: list[int] = []

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        case.headers = {**(case.headers or {}), **AUTH}  # the generated Authorization is never the right key
        response = case.call(base_url=runtime.url, timeout=30)
        statuses.append(response.status_code)
        assert response.status_code < 500, (case.as_curl_command(), response.status_code, response.text[:500])
        assert response.status_code != 401, "the right key was sent"
        if response.status_code >= 400:  # every error is JSON in the one shape
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}

    check()
    assert statuses
    assert_log_clean(runtime)


# Raw bodies: anything JSON can hold, nested, with long and exotic strings, plus near-valid requests.
_text = st.one_of(
    st.text(max_size=50),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.just("x" * 5_000),
    st.just("\u202e\u0000\ud7ff\U0001f600" * 200),
    st.just(""),
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_text, inner, max_size=5),
    max_leaves=20,
)
_role = st.sampled_from(["user", "assistant", "system", "developer", "tool", "function", "", "USER"]) | _json
_message = st.fixed_dictionaries(
    {}, optional={"role": _role, "content": _json | _text, "name": _json, "tool_calls": _json}
)
_chat_body = st.fixed_dictionaries(
    {},
    optional={
        "messages": st.lists(_message, max_size=4) | _json,
        "stream": _json | st.booleans(),
        "stream_options": _json,
        "user": _json | _text,
        "model": _json,
        "tools": _json,
    },
)
_input_item = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["message", "function_call_output", "item_reference"]) | _json,
        "role": _role,
        "content": _json | _text | st.lists(st.fixed_dictionaries({"type": st.just("input_text"), "text": _text})),
    },
)
_responses_body = st.fixed_dictionaries(
    {},
    optional={
        "input": st.lists(_input_item, max_size=4) | _text | _json,
        "instructions": _json | _text,
        "stream": _json | st.booleans(),
        "store": _json | st.booleans(),
        "previous_response_id": _json | _text | st.just("resp_" + "0" * 48),
        "conversation": _json | _text,
        "metadata": _json,
        "tools": _json,
    },
)
_session_body = st.fixed_dictionaries({}, optional={"content": _text | _json, "role": _json})
_session_id = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=300)


@settings(FUZZ_SETTINGS, max_examples=RAW_EXAMPLES)
@given(data=st.data())
def _raw_fuzz(runtime: RuntimeProcess, client: httpx.Client, statuses: list[int], data: st.DataObject) -> None:
    endpoint = data.draw(st.sampled_from(["chat", "responses", "session"]))
    shaped = {"chat": _chat_body, "responses": _responses_body, "session": _session_body}[endpoint]
    body = data.draw(shaped) if data.draw(st.booleans()) else data.draw(_json)
    headers = dict(AUTH)
    if data.draw(st.booleans()):
        # Any visible ASCII, spaces inside only: anything else is refused by the HTTP client itself.
        headers["X-Session-ID"] = data.draw(st.from_regex(r"[!-~]([ -~]{0,298}[!-~])?", fullmatch=True))
    url = "/v1/chat/completions" if endpoint == "chat" else "/v1/responses"
    if endpoint == "session":
        url = f"/v1/sessions/{quote(data.draw(_session_id), safe='')}/messages"
    response = client.post(
        url, content=json.dumps(body).encode(), headers={**headers, "Content-Type": "application/json"}
    )
    statuses.append(response.status_code)
    assert response.status_code < 500, (url, body, response.status_code, response.text[:500])
    assert response.status_code != 401


def test_raw_hypothesis_bodies_never_get_a_5xx(runtime: RuntimeProcess) -> None:
    statuses: list[int] = []
    with httpx.Client(base_url=runtime.url, timeout=30) as client:
        _raw_fuzz(runtime, client, statuses)
    assert len(statuses) >= MIN_REQUESTS
    assert any(status == 200 for status in statuses) and any(400 <= status < 500 for status in statuses)
    assert_log_clean(runtime)
