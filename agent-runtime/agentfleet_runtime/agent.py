"""One agent turn: recall the session, reason (with tools), remember the exchange.

With an answer cache (spec.cache, memory/answer_cache.py) the reasoning step may be answered from
it. Cached are only answers the Agent would give again: the effective temperature is 0 (the
Agent's spec.model.temperature when the caller sets none, or the caller's own), the answer came
without any tool call (a tool's data changes and its call may have side effects; per-tool caching is
the tool's `cacheSeconds`), and it ended normally (finish_reason stop or length). A cached answer is
remembered in the session like any other, reports no token usage (no model was asked) and no tool
calls, and is streamed in chunks like the rules reasoner's answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from .deadline import Deadline
from .errors import ApiError
from .memory.answer_cache import AnswerCache, CacheResult, Lookup
from .memory.base import SessionMemory, StoreUnavailable, Turn
from .perception import Message
from .reasoning.base import Reasoner, ReasoningResult, StreamEvent, Usage, chunk_text
from .request_params import ModelParams
from .tools.toolbox import ToolBox

# Answers that ended as the model meant them to; content_filter or tool_calls (steps exhausted) may
# not be what the same request gets next time.
CACHEABLE_FINISH = frozenset({"stop", "length"})


def _store_error() -> ApiError:
    return ApiError(
        503, "the session store is unavailable; try again shortly", type="server_error", code="state_unavailable"
    )


@dataclass
class PreparedTurn:
    session_id: str | None
    conversation: list[dict[str, Any]]
    new_messages: list[Message]
    # With an answer cache, once reasoned: hit, miss or bypass (the X-Agent-Cache header).
    cache: CacheResult | None = None


class Agent:
    def __init__(
        self,
        *,
        system_prompt: str,
        reasoner: Reasoner,
        tools: ToolBox,
        memory: SessionMemory | None,
        cache: AnswerCache | None = None,
        default_params: ModelParams | None = None,
    ) -> None:
        """`default_params`: what a request that sets none gets (the Agent's own); needed with a cache."""
        if cache is not None and default_params is None:
            raise ValueError("an answer cache needs the Agent's default parameters")
        self.system_prompt = system_prompt
        self.reasoner = reasoner
        self.tools = tools
        self.memory = memory
        self.cache = cache
        self.default_params = default_params

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

    async def _lookup(self, turn: PreparedTurn, params: ModelParams | None) -> Lookup | None:
        if self.cache is None:
            return None
        effective = params or self.default_params
        assert effective is not None  # required with a cache
        if effective.temperature != 0:
            lookup = self.cache.bypass()
        else:
            # The Agent's own system prompt is left out: the revision in the key stands for it.
            skip = 1 if self.system_prompt and turn.conversation[:1] == [self._system_message()] else 0
            lookup = await self.cache.lookup({"conversation": turn.conversation[skip:], "params": effective.upstream()})
        turn.cache = lookup.result
        return lookup

    def _system_message(self) -> dict[str, Any]:
        return {"role": "system", "content": self.system_prompt}

    async def _keep(self, lookup: Lookup | None, result: ReasoningResult) -> None:
        if self.cache is None or lookup is None or lookup.key is None or lookup.result != "miss":
            return
        if result.tool_calls or result.finish_reason not in CACHEABLE_FINISH or not result.reply:
            return
        await self.cache.store(lookup.key, result.reply, result.finish_reason)

    @staticmethod
    def _cached(lookup: Lookup | None) -> ReasoningResult | None:
        if lookup is None or lookup.answer is None:
            return None
        return ReasoningResult(lookup.answer.reply, [], Usage(), lookup.answer.finish_reason)

    async def reason(
        self, turn: PreparedTurn, params: ModelParams | None = None, deadline: Deadline | None = None
    ) -> ReasoningResult:
        """The answer to a prepared turn (from the cache, or the reasoner with tools), remembered."""
        lookup = await self._lookup(turn, params)
        result = self._cached(lookup)
        if result is None:
            result = await self.reasoner.answer(turn.conversation, self.tools, params, deadline)
            await self._keep(lookup, result)
        await self.remember(turn, result)
        return result

    async def reason_stream(
        self, turn: PreparedTurn, params: ModelParams | None = None, deadline: Deadline | None = None
    ) -> AsyncIterator[StreamEvent]:
        """As `reason`, as text deltas and then the one ReasoningResult (remembered before it is yielded)."""
        lookup = await self._lookup(turn, params)
        cached = self._cached(lookup)
        if cached is not None:
            for chunk in chunk_text(cached.reply):
                yield chunk
            await self.remember(turn, cached)
            yield cached
            return
        async for event in self.reasoner.stream(turn.conversation, self.tools, params, deadline):
            if isinstance(event, ReasoningResult):
                await self._keep(lookup, event)
                await self.remember(turn, event)
            yield event

    async def respond(
        self,
        session_id: str | None,
        messages: list[Message],
        *,
        params: ModelParams | None = None,
        deadline: Deadline | None = None,
    ) -> ReasoningResult:
        turn = await self.prepare(session_id, messages)
        return await self.reason(turn, params, deadline)

    async def respond_stream(
        self,
        session_id: str | None,
        messages: list[Message],
        *,
        params: ModelParams | None = None,
        deadline: Deadline | None = None,
    ) -> AsyncIterator[StreamEvent]:
        turn = await self.prepare(session_id, messages)
        async for event in self.reason_stream(turn, params, deadline):
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
