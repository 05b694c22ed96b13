"""What the runtime does with each parameter of an OpenAI request: honour it, or refuse it (400).

A client written for OpenAI sets `temperature`, `max_tokens` or `response_format` and trusts the
answer to reflect them. A parameter the runtime accepted and then dropped would make that trust
wrong without a word, so there is no such parameter: every key of a chat completions request is
in CHAT_PARAMETERS with what happens to it, and a key that is not is refused (a typo such as
`max_token`, or a parameter newer than this runtime, gets a 400 naming it rather than an answer
that ignores it; the OpenAI SDKs send only the keys their caller set). A parameter whose value is
null counts as absent, as OpenAI treats it.

Honoured parameters are checked against OpenAI's bounds and the Agent's: the Agent's
`spec.model.temperature` is the default a caller may override within 0..2, and its `maxTokens`
caps what a caller may ask for. Refused ones are refused whatever the provider; a refusal is a
400 whose `param` names the parameter.

For the `rules` provider (no model): sampling parameters (`temperature`, `top_p`, `seed`, the
penalties) are accepted and have no effect, since a deterministic reasoner already gives what they
aim at; `max_tokens` and `stop` are applied to the rules' reply; `response_format` other than text
is refused, as templates cannot promise JSON.

`chat_completion_params(body, model)` is the policy of `POST /v1/chat/completions`. Another API
(the Responses API) maps its own field names onto the same checks: the `check_*` functions take
the value and the name to report, and ModelParams is what reaches the reasoner either way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from .config import ModelConfig
from .errors import ApiError

MAX_STOP_SEQUENCES = 4  # OpenAI's limit
_SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

Handling = Literal["honoured", "refused", "perception"]


@dataclass(frozen=True)
class Parameter:
    handling: Handling
    doc: str


_TOOLS_REFUSAL = (
    "Refused: the Agent's tools come from its Connectors and the runtime runs them itself; "
    "a caller cannot add or choose tools."
)

# Every key a chat completions request may carry, and what the runtime does with it. The OpenAPI
# document and the README are written from this table.
CHAT_PARAMETERS: dict[str, Parameter] = {
    "messages": Parameter("perception", "The conversation; the last message must be a user message."),
    "model": Parameter(
        "perception", "Accepted and not used: the Agent's configured model answers, and the response names it."
    ),
    "stream": Parameter("perception", "Honoured: true answers server-sent events ending with [DONE]."),
    "stream_options": Parameter(
        "perception",
        "Honoured: include_usage adds a last chunk with empty choices and the usage. Other keys are refused.",
    ),
    "user": Parameter("perception", "Honoured as the session id when no X-Session-ID header is sent."),
    "temperature": Parameter(
        "honoured", "Honoured, 0..2; absent = the Agent's spec.model.temperature. rules: no effect."
    ),
    "top_p": Parameter("honoured", "Honoured, 0..1. rules: no effect."),
    "seed": Parameter("honoured", "Honoured (an integer). rules: no effect (always deterministic)."),
    "presence_penalty": Parameter("honoured", "Honoured, -2..2. rules: no effect."),
    "frequency_penalty": Parameter("honoured", "Honoured, -2..2. rules: no effect."),
    "max_tokens": Parameter(
        "honoured",
        "Honoured, capped by the Agent's spec.model.maxTokens when set (an answer cut there ends with "
        "finish_reason length). rules: the reply is cut to about this many tokens.",
    ),
    "max_completion_tokens": Parameter(
        "honoured", "As max_tokens, and sent to the model under this name. Both set to different values: refused."
    ),
    "stop": Parameter(
        "honoured",
        f"Honoured: a string or up to {MAX_STOP_SEQUENCES} strings. rules: the reply ends before the first of them.",
    ),
    "response_format": Parameter(
        "honoured",
        "Honoured: {type: text}, {type: json_object} or {type: json_schema, json_schema: {name, schema, strict}} "
        "is passed to the model. rules: only text; the others are refused.",
    ),
    "n": Parameter("refused", "Only 1 is accepted: the runtime answers with one choice."),
    "tools": Parameter("refused", _TOOLS_REFUSAL),
    "tool_choice": Parameter("refused", _TOOLS_REFUSAL),
    "functions": Parameter("refused", _TOOLS_REFUSAL),
    "function_call": Parameter("refused", _TOOLS_REFUSAL),
    "parallel_tool_calls": Parameter("refused", _TOOLS_REFUSAL),
    "logprobs": Parameter("refused", "Only false is accepted: log probabilities are not returned."),
    "top_logprobs": Parameter("refused", "Refused: log probabilities are not returned."),
    "logit_bias": Parameter("refused", "Refused: not passed to the model."),
    "audio": Parameter("refused", "Refused: text only."),
    "modalities": Parameter("refused", 'Only ["text"] is accepted.'),
    "prediction": Parameter("refused", "Refused: not passed to the model."),
    "reasoning_effort": Parameter("refused", "Refused: not passed to the model."),
    "verbosity": Parameter("refused", "Refused: not passed to the model."),
    "web_search_options": Parameter("refused", "Refused: the Agent's tools come from its Connectors."),
    "store": Parameter("refused", "Only false is accepted: sessions are stored by the Agent's StatePolicy."),
    "metadata": Parameter("refused", "Refused: nothing is stored with OpenAI."),
    "service_tier": Parameter("refused", "Refused: the Agent's model endpoint decides."),
    "prompt_cache_key": Parameter("refused", "Refused: not passed to the model."),
    "prompt_cache_retention": Parameter("refused", "Refused: not passed to the model."),
    "prompt_cache_options": Parameter("refused", "Refused: not passed to the model."),
    "safety_identifier": Parameter("refused", "Refused: not passed to the model."),
    "moderation": Parameter("refused", "Refused: not passed to the model."),
}

# Values of refused parameters that ask for nothing beyond what the runtime does anyway.
_HARMLESS: dict[str, Any] = {"n": [1], "logprobs": [False], "store": [False], "modalities": [["text"]]}


@dataclass(frozen=True)
class ModelParams:
    """The caller's parameters after the policy: what the reasoner applies to this request."""

    temperature: float
    max_tokens: int | None = None
    max_tokens_key: str = "max_tokens"  # the name the model is sent it under
    top_p: float | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    stop: tuple[str, ...] = ()
    response_format: dict[str, Any] | None = None

    def upstream(self) -> dict[str, Any]:
        """The fields of an upstream chat completions request these parameters set."""
        payload: dict[str, Any] = {"temperature": self.temperature}
        if self.max_tokens is not None:
            payload[self.max_tokens_key] = self.max_tokens
        for key in ("top_p", "seed", "presence_penalty", "frequency_penalty", "response_format"):
            value = getattr(self, key)
            if value is not None:
                payload[key] = value
        if self.stop:
            payload["stop"] = list(self.stop)
        return payload


def defaults(model: ModelConfig) -> ModelParams:
    """What a request that sets nothing gets: the Agent's own values."""
    return ModelParams(temperature=model.temperature, max_tokens=model.max_tokens)


def responses_params(body: Mapping[str, Any], model: ModelConfig) -> ModelParams:
    """/v1/responses: `temperature` and `max_output_tokens` under the chat completions rules (bounds,
    capped by the Agent's maxTokens); sent upstream as the chat completions fields they are."""
    fields: dict[str, Any] = {}
    if body.get("temperature") is not None:
        fields["temperature"] = check_temperature(body["temperature"])
    if body.get("max_output_tokens") is not None:
        fields["max_tokens"] = check_max_tokens(body["max_output_tokens"], "max_output_tokens", model)
    return replace(defaults(model), **fields)


def refused(param: str, message: str, code: str = "unsupported_parameter") -> ApiError:
    return ApiError(400, f"{param}: {message}", code=code, param=param)


def _number(value: Any, param: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise refused(param, "must be a number", "invalid_parameter")
    if not low <= value <= high:
        raise refused(param, f"must be between {low:g} and {high:g}, got {value:g}", "invalid_parameter")
    return value


def check_temperature(value: Any, param: str = "temperature") -> float:
    return _number(value, param, 0, 2)


def check_top_p(value: Any, param: str = "top_p") -> float:
    return _number(value, param, 0, 1)


def check_penalty(value: Any, param: str) -> float:
    return _number(value, param, -2, 2)


def check_seed(value: Any, param: str = "seed") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise refused(param, "must be an integer", "invalid_parameter")
    return value


def check_max_tokens(value: Any, param: str, model: ModelConfig) -> int:
    """The caller's token limit, capped by the Agent's (spec.model.maxTokens)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise refused(param, "must be a positive integer", "invalid_parameter")
    return min(value, model.max_tokens) if model.max_tokens is not None else value


def check_stop(value: Any, param: str = "stop") -> tuple[str, ...]:
    sequences = [value] if isinstance(value, str) else value
    if not isinstance(sequences, list) or not all(isinstance(s, str) and s for s in sequences):
        raise refused(param, "must be a non-empty string or a list of non-empty strings", "invalid_parameter")
    if len(sequences) > MAX_STOP_SEQUENCES:
        raise refused(param, f"at most {MAX_STOP_SEQUENCES} sequences", "invalid_parameter")
    return tuple(sequences)


def check_response_format(value: Any, model: ModelConfig, param: str = "response_format") -> dict[str, Any] | None:
    """The format passed to the model; None for plain text (nothing to ask the model for)."""
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise refused(param, "type must be text, json_object or json_schema", "invalid_parameter")
    if kind == "text":
        return None
    if model.provider == "rules":
        raise refused(param, f"{kind} needs a model; the rules provider answers from templates and can only send text")
    if kind == "json_schema":
        schema = value.get("json_schema")
        if not isinstance(schema, dict) or not isinstance(schema.get("name"), str):
            raise refused(f"{param}.json_schema", "must be an object with a name", "invalid_parameter")
        if not _SCHEMA_NAME.match(schema["name"]):
            raise refused(f"{param}.json_schema.name", "must be 1-64 of a-z, A-Z, 0-9, _ and -", "invalid_parameter")
        if "schema" in schema and not isinstance(schema["schema"], dict):
            raise refused(f"{param}.json_schema.schema", "must be a JSON Schema object", "invalid_parameter")
        if "strict" in schema and not isinstance(schema["strict"], bool | None):
            raise refused(f"{param}.json_schema.strict", "must be a boolean", "invalid_parameter")
    return dict(value)


def check_stream_options(value: Any, param: str = "stream_options") -> bool:
    """Whether the caller asked for the usage chunk at the end of a stream."""
    if value is None:
        return False
    if not isinstance(value, dict):
        raise refused(param, "must be an object", "invalid_parameter")
    unknown = sorted(set(value) - {"include_usage"})
    if unknown:
        raise refused(f"{param}.{unknown[0]}", "is not supported; only include_usage is")
    include = value.get("include_usage", False)
    if not isinstance(include, bool | None):
        raise refused(f"{param}.include_usage", "must be a boolean", "invalid_parameter")
    return include is True


def _refuse(name: str, value: Any) -> None:
    if value in _HARMLESS.get(name, []):
        return
    raise refused(name, CHAT_PARAMETERS[name].doc.removeprefix("Refused: "))


def chat_completion_params(body: Mapping[str, Any], model: ModelConfig) -> ModelParams:
    """The parameters of a chat completions request to apply, or ApiError 400 naming the one refused."""
    given = {key: value for key, value in body.items() if value is not None}
    for key in given:
        if key not in CHAT_PARAMETERS:
            raise refused(key, "unknown parameter; the runtime refuses what it would not honour", "unknown_parameter")
    for key, value in given.items():
        if CHAT_PARAMETERS[key].handling == "refused":
            _refuse(key, value)
    check_stream_options(given.get("stream_options"))
    both = {given.get("max_tokens"), given.get("max_completion_tokens")}
    if "max_tokens" in given and "max_completion_tokens" in given and len(both) > 1:
        raise refused("max_completion_tokens", "differs from max_tokens; set one of them", "invalid_parameter")
    params = defaults(model)
    fields: dict[str, Any] = {}
    if "temperature" in given:
        fields["temperature"] = check_temperature(given["temperature"])
    if "top_p" in given:
        fields["top_p"] = check_top_p(given["top_p"])
    if "seed" in given:
        fields["seed"] = check_seed(given["seed"])
    for penalty in ("presence_penalty", "frequency_penalty"):
        if penalty in given:
            fields[penalty] = check_penalty(given[penalty], penalty)
    for key in ("max_tokens", "max_completion_tokens"):
        if key in given:
            fields["max_tokens"] = check_max_tokens(given[key], key, model)
            fields["max_tokens_key"] = key
    if "stop" in given:
        fields["stop"] = check_stop(given["stop"])
    if "response_format" in given:
        fields["response_format"] = check_response_format(given["response_format"], model)
    return ModelParams(**{**params.__dict__, **fields})
