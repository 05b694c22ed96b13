"""What every reasoner gives back, and the interface the API layer drives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..tools.toolbox import ToolBox, ToolCallRecord

if TYPE_CHECKING:
    from ..deadline import Deadline
    from ..request_params import ModelParams


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class ReasoningResult:
    reply: str
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = "stop"  # the model's: stop, length, tool_calls or content_filter


# A stream yields text deltas as they are produced, then exactly one ReasoningResult.
StreamEvent = str | ReasoningResult


class Reasoner(Protocol):
    """`params`: the caller's parameters after the policy (None: the Agent's own); `deadline`: the
    request's overall budget (None: none)."""

    async def answer(
        self,
        conversation: list[dict[str, Any]],
        tools: ToolBox,
        params: ModelParams | None = None,
        deadline: Deadline | None = None,
    ) -> ReasoningResult: ...

    def stream(
        self,
        conversation: list[dict[str, Any]],
        tools: ToolBox,
        params: ModelParams | None = None,
        deadline: Deadline | None = None,
    ) -> AsyncIterator[StreamEvent]: ...

    async def aclose(self) -> None: ...


def estimate_tokens(text: str) -> int:
    # Roughly what BPE tokenizers produce for English; only used where no model counts for us.
    return max(1, (len(text) + 3) // 4) if text else 0


def chunk_text(text: str, size: int = 24) -> list[str]:
    """Split a finished reply into stream deltas on word boundaries."""
    chunks, current = [], ""
    for word in text.split(" "):
        piece = word if not current else " " + word
        if current and len(current) + len(piece) > size:
            chunks.append(current)
            piece = " " + word
            current = ""
        current += piece
    if current:
        chunks.append(current)
    return chunks
