"""An MCP `tools/call` result as the runtime's tool result: pure functions, no I/O.

The model reads text, so every content block becomes text: text blocks as they are, other blocks
(images, audio, resources) as a short note of what was there, since pasting base64 into the
model's context would cost tokens and tell it nothing. `structuredContent`, when the server sends
it, is the data (machine-readable, what the rules reasoner's templates index into); `isError`
is a failed call whose explanation is the server's own text, so the model can tell the user why.
"""

from __future__ import annotations

from typing import Any

from mcp_types import (
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    ContentBlock,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
)

from .connector import ToolError

MAX_ERROR_CHARS = 2_000


def block_text(block: ContentBlock) -> str:
    """One content block as text for the model."""
    if isinstance(block, TextContent):
        return block.text
    if isinstance(block, ImageContent | AudioContent):
        return f"[{block.type} ({block.mime_type}), {_size(block.data)}]"
    if isinstance(block, ResourceLink):
        return f"[resource link: {block.name} <{block.uri}>]"
    if isinstance(block, EmbeddedResource):
        resource = block.resource
        if isinstance(resource, BlobResourceContents):
            kind = resource.mime_type or "binary"
            return f"[resource {resource.uri} ({kind}), {_size(resource.blob)}]"
        return resource.text
    return f"[{getattr(block, 'type', 'unknown')} content]"  # a block type newer than this runtime


def content_text(blocks: list[ContentBlock]) -> str:
    return "\n".join(text for text in (block_text(block) for block in blocks) if text)


def tool_result_data(result: CallToolResult, tool: str) -> Any:
    """The data of a successful call (structuredContent when present, else the content as text),
    or ToolError("tool_error") with the server's explanation when the result says isError."""
    text = content_text(result.content)
    if result.is_error:
        reason = text.strip() or "no reason given"
        if len(reason) > MAX_ERROR_CHARS:
            reason = reason[:MAX_ERROR_CHARS] + "..."
        raise ToolError("tool_error", f"{tool} failed", detail=reason)
    if result.structured_content is not None:
        return result.structured_content
    return text


def _size(data: str) -> str:
    # base64: 4 characters carry 3 bytes, less one per "=" of padding
    size = len(data) * 3 // 4 - data[-2:].count("=")
    return f"{size} bytes" if size < 10_000 else f"{size // 1024} KiB"
