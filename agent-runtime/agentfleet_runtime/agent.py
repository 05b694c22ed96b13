"""One agent turn: recall the session, reason (with tools), remember the exchange."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from .deadline import Deadline
from .errors import ApiError
from .memory.base import SessionMemory, StoreUnavailable, Turn
from .perception import Message
from .reasoning.base import Reasoner, ReasoningResult, StreamEvent
from .request_params import ModelParams
from .tools.toolbox import ToolBox


def _store_error() -> ApiError:
    return ApiError(
        503, "the session store is unavailable; try again shortly", type="server_error", code="state_unavailable"
    )


@dataclass
class PreparedTurn:
    session_id: str | None
    conversation: list[dict[str, Any]]
    new_messages: list[Message]


class Agent:
    def __init__(self, *, system_prompt: str, reasoner: Reasoner, tools: ToolBox, memory: SessionMemory | None) -> None:
        self.system_prompt = system_prompt
        self.reasoner = reasoner
        self.tools = tools
        self.memory = memory

    async def prepare(self, session_id: str | None, messages: list[Message]) -> PreparedTurn:
        """The conversation to reason over: stored history plus what is new in this request.

        A client that re-sends the whole conversation (the OpenAI habit) on a session would
        otherwise duplicate it, so with a stored session only the messages after the request's
        last assistant message count as new.
        """
        history: list[Turn] = []
        new = messages
        if session_id is not None and self.memory is not None:
            last_assistant = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=-1)
            new = messages[last_assistant + 1 :]
            try:
                history = await self.memory.history(session_id)
            except StoreUnavailable:
                raise _store_error() from None
        conversation: list[dict[str, Any]] = []
        if self.system_prompt:
            conversation.append({"role": "system", "content": self.system_prompt})
        for turn in history:
            conversation.extend(turn.messages)
            conversation.append({"role": "assistant", "content": turn.reply})
        conversation.extend(m.to_json() for m in new)
        return PreparedTurn(session_id, conversation, new)

    async def remember(self, turn: PreparedTurn, result: ReasoningResult) -> None:
        if turn.session_id is None or self.memory is None:
            return
        record = Turn(
            messages=[m.to_json() for m in turn.new_messages],
            reply=result.reply,
            tool_calls=[call.to_json() for call in result.tool_calls],
        )
        try:
            await self.memory.append(turn.session_id, record)
        except StoreUnavailable:
            raise _store_error() from None

    async def respond(
        self,
        session_id: str | None,
        messages: list[Message],
        *,
        params: ModelParams | None = None,
        deadline: Deadline | None = None,
    ) -> ReasoningResult:
        turn = await self.prepare(session_id, messages)
        result = await self.reasoner.answer(turn.conversation, self.tools, params, deadline)
        await self.remember(turn, result)
        return result

    async def respond_stream(
        self,
        session_id: str | None,
        messages: list[Message],
        *,
        params: ModelParams | None = None,
        deadline: Deadline | None = None,
    ) -> AsyncIterator[StreamEvent]:
        turn = await self.prepare(session_id, messages)
        async for event in self.reasoner.stream(turn.conversation, self.tools, params, deadline):
            if isinstance(event, ReasoningResult):
                await self.remember(turn, event)
            yield event

    async def history(self, session_id: str) -> list[Turn]:
        if self.memory is None:
            return []
        try:
            return await self.memory.history(session_id)
        except StoreUnavailable:
            raise _store_error() from None

    async def erase(self, session_id: str) -> bool:
        if self.memory is None:
            return False
        try:
            return await self.memory.erase(session_id)
        except StoreUnavailable:
            raise _store_error() from None
