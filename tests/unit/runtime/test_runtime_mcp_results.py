"""MCP tool results as tool results, and what a failed call's wire trace allows: pure functions."""

from __future__ import annotations

import base64

import httpx2
import pytest
from agentfleet_runtime.tools.connector import ToolError
from agentfleet_runtime.tools.mcp_results import MAX_ERROR_CHARS, content_text, tool_result_data
from agentfleet_runtime.tools.mcp_tools import classify_call_error, classify_connect_error
from agentfleet_runtime.tools.mcp_transport import Exchange, WireTrace, transport_kind
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CONNECTION_CLOSED,
    INVALID_PARAMS,
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

PNG = base64.b64encode(b"\x89PNG" + b"\0" * 2044).decode()


def text(value: str) -> TextContent:
    return TextContent(type="text", text=value)


def test_structured_content_is_the_data_when_present() -> None:
    result = CallToolResult(content=[text('{"orderId": "A-1"}')], structured_content={"orderId": "A-1"})
    assert tool_result_data(result, "lookup_order") == {"orderId": "A-1"}


def test_without_structured_content_the_text_blocks_are_joined() -> None:
    result = CallToolResult(content=[text("14 units"), text("of KB-01")])
    assert tool_result_data(result, "check_stock") == "14 units\nof KB-01"


def test_other_blocks_are_summarized_not_pasted() -> None:
    blocks = [
        text("Here is the chart:"),
        ImageContent(type="image", data=PNG, mime_type="image/png"),
        AudioContent(type="audio", data=PNG, mime_type="audio/wav"),
        ResourceLink(type="resource_link", name="report", uri="file:///reports/q3.pdf"),
        EmbeddedResource(type="resource", resource=TextResourceContents(uri="file:///a.txt", text="inline text")),
        EmbeddedResource(
            type="resource", resource=BlobResourceContents(uri="file:///b.bin", blob=PNG, mime_type="application/zip")
        ),
    ]
    assert content_text(blocks).splitlines() == [
        "Here is the chart:",
        "[image (image/png), 2048 bytes]",
        "[audio (audio/wav), 2048 bytes]",
        "[resource link: report <file:///reports/q3.pdf>]",
        "inline text",
        "[resource file:///b.bin (application/zip), 2048 bytes]",
    ]
    assert PNG not in content_text(blocks)


def test_is_error_is_a_tool_error_with_the_servers_text() -> None:
    result = CallToolResult(content=[text("unknown SKU ZZ-9")], is_error=True, structured_content={"x": 1})
    with pytest.raises(ToolError) as caught:
        tool_result_data(result, "check_stock")
    assert caught.value.outcome == "tool_error"
    assert caught.value.message == "check_stock failed: unknown SKU ZZ-9"


def test_is_error_without_text_still_explains_and_long_text_is_cut() -> None:
    with pytest.raises(ToolError, match="no reason given"):
        tool_result_data(CallToolResult(content=[], is_error=True), "t")
    with pytest.raises(ToolError) as caught:
        tool_result_data(CallToolResult(content=[text("x" * 10_000)], is_error=True), "t")
    assert len(caught.value.message) < MAX_ERROR_CHARS + 20


@pytest.mark.parametrize(
    ("endpoint", "kind"),
    [
        ("http://mcp.tools:8080/mcp", "streamable-http"),
        ("http://mcp.tools:8080/sse", "sse"),
        ("https://mcp.example.com/v1/sse/", "sse"),
        ("http://mcp.tools/sse/mcp", "streamable-http"),
        ("http://mcp.tools/", "streamable-http"),
    ],
)
def test_the_transport_follows_the_endpoint_path(endpoint: str, kind: str) -> None:
    assert transport_kind(endpoint) == kind


def trace(*exchanges: Exchange) -> WireTrace:
    return WireTrace(list(exchanges))


def test_a_refused_connection_never_reached_the_server_so_the_call_may_be_repeated() -> None:
    refused = Exchange("tools/call", error=httpx2.ConnectError("refused"))
    failure = classify_call_error("orders", MCPError(CONNECTION_CLOSED, "Connection closed"), trace(refused))
    assert (failure.outcome, failure.sent, failure.reopen, failure.transient) == ("unreachable", False, True, True)


def test_a_forgotten_session_is_reopened_and_the_call_repeated() -> None:
    gone = Exchange("tools/call", status=404)
    failure = classify_call_error("orders", MCPError(-32600, "Session not found"), trace(gone))
    assert (failure.sent, failure.lost, failure.reopen) == (False, True, True)


def test_a_stream_cut_after_sending_is_not_repeated_for_side_effects() -> None:
    sent = Exchange("tools/call", status=200)
    failure = classify_call_error("orders", MCPError(CONNECTION_CLOSED, "Connection closed"), trace(sent))
    assert (failure.outcome, failure.sent, failure.reopen) == ("unreachable", True, False)


def test_a_timeout_after_sending_may_have_run_the_tool() -> None:
    in_flight = Exchange("tools/call")
    failure = classify_call_error("orders", TimeoutError(), trace(in_flight))
    assert (failure.outcome, failure.sent, failure.reopen, failure.lost) == ("timeout", True, False, True)
    nothing_sent = classify_call_error("orders", TimeoutError(), trace())
    assert nothing_sent.sent is False


def test_a_json_rpc_error_is_the_server_saying_no() -> None:
    failure = classify_call_error(
        "orders", MCPError(INVALID_PARAMS, "Unknown tool: nope"), trace(Exchange("tools/call", status=200))
    )
    assert (failure.outcome, failure.transient, failure.lost) == ("protocol_error", False, False)
    # The server's words go to the model (ToolError.detail), not into the logged reason.
    assert failure.message == "orders rejected the call" and failure.detail == "Unknown tool: nope"


@pytest.mark.parametrize(
    ("status", "outcome", "sent"), [(401, "auth_error", False), (503, "unreachable", False), (500, "unreachable", True)]
)
def test_http_statuses_of_the_call(status: int, outcome: str, sent: bool) -> None:
    failure = classify_call_error(
        "orders", MCPError(-32603, "Server returned an error response"), trace(Exchange("tools/call", status=status))
    )
    assert (failure.outcome, failure.sent) == (outcome, sent)


def test_connect_failures() -> None:
    refused = ExceptionGroup("tg", [httpx2.ConnectError("All connection attempts failed")])
    assert classify_connect_error("orders", refused, trace()).outcome == "unreachable"
    unauthorized = ExceptionGroup("tg", [MCPError(-32603, "Server returned an error response")])
    failure = classify_connect_error("orders", unauthorized, trace(Exchange("server/discover", status=401)))
    assert (failure.outcome, failure.transient) == ("auth_error", False)
    assert classify_connect_error("orders", TimeoutError(), trace()).outcome == "timeout"
    wrong_url = classify_connect_error("orders", unauthorized, trace(Exchange("initialize", status=404)))
    assert wrong_url.outcome == "protocol_error" and "HTTP 404" in wrong_url.message
