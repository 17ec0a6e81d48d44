"""Provider kind `gemini`: Google's Gemini API behind the OpenAI chat completions seam.

The core hands over an OpenAI chat completions body; it goes out as
`POST {base_url}/models/{model}:generateContent` (streams: `:streamGenerateContent?alt=sse`)
with the key in `x-goog-api-key`, and the answer comes back as a `chat.completion` (or
`chat.completion.chunk`s), so clients never see Gemini's format.

Translated, request (OpenAI -> generateContent):
  - `system` and `developer` messages, wherever they are, joined ("\\n\\n") into
    `systemInstruction`;
  - roles: user -> user, assistant -> model, tool -> user; consecutive turns of one role
    merged into one;
  - user content as a string or parts: `text`; `image_url` (data URLs -> `inlineData`;
    http(s) URLs -> `fileData` with the MIME type told by the URL's extension, one of the
    image types Gemini reads, else a 400: Gemini needs the type and the sidecar does not
    fetch the image to find it out); `input_audio` (wav, mp3) -> `inlineData`;
  - assistant text and `tool_calls` -> `functionCall` parts (`arguments` parsed as JSON);
    the thought signature a client kept (`extra_content.google.thought_signature`, where
    answers put it) goes back, and a turn whose calls carry none gets Google's documented
    placeholder, so history written by another model passes Gemini 3's check;
  - `tool` messages -> `functionResponse` parts named after the earlier tool call with that
    id (a JSON object result as it is, anything else as `{"output": text}`);
  - `tools` -> `functionDeclarations`, their JSON Schema cut to Gemini's OpenAPI subset
    (local `$ref`s inlined, `allOf` merged, `oneOf` -> `anyOf`, a null branch or type ->
    `nullable`, `const` -> `enum`; `additionalProperties`, `$schema`, `strict`, `examples`,
    formats Gemini refuses and the like dropped); `tool_choice` (auto, none -> NONE,
    required -> ANY, a named function -> ANY with `allowedFunctionNames`, `allowed_tools`
    -> AUTO or ANY over only those declarations);
  - `generationConfig`: `max_completion_tokens` / `max_tokens` -> `maxOutputTokens`,
    `temperature`, `top_p`, `stop` -> `stopSequences`, `n` -> `candidateCount`, `seed`,
    non-zero `presence_penalty` / `frequency_penalty`, `response_format` json_object ->
    `responseMimeType` application/json, json_schema -> that and `responseSchema` (cut
    like tool schemas, property order kept).
Translated, response (GenerateContentResponse -> OpenAI): one choice per candidate; text
  parts joined into `content`; `functionCall` parts -> `tool_calls` with new `call_...` ids
  and the part's thought signature in `extra_content.google.thought_signature` (where
  Google's own OpenAI-compatible endpoint puts it); `finishReason` -> `finish_reason`
  (STOP -> stop, or tool_calls when the candidate called a function; MAX_TOKENS -> length;
  SAFETY, RECITATION, BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_*, MODEL_ARMOR ->
  content_filter; anything else -> stop); a prompt blocked by `promptFeedback.blockReason`
  -> `n` choices with empty content and finish_reason content_filter: an answer, not an
  error, the way OpenAI reports filtered output (the request was well formed, and another
  model is not asked); usage from `usageMetadata` (prompt and tool-use prompt tokens ->
  prompt tokens, candidates and thoughts -> completion tokens, thoughts also ->
  reasoning_tokens, cached content -> cached_tokens); streams chunk by chunk, the usage
  chunk last when `stream_options.include_usage` is set; error statuses and `{"error": ...}`
  events in a stream -> the OpenAI error shape with the upstream's status (429, 500 and 503
  fall back).

Not translated:
  - refused with 400 before sending: content parts other than text, image_url and
    input_audio (file), image URLs whose type cannot be told, non-function tools,
    unparseable tool-call arguments, a tool message answering no earlier tool call (Gemini
    needs the function's name), unresolvable or recursive `$ref`s, the deprecated
    `function` role;
  - ignored: `parallel_tool_calls` (Gemini has no switch for it), `reasoning_effort` (the
    model's own thinking default applies), `logprobs`/`top_logprobs`, `logit_bias`, `user`,
    `modalities`, `audio`, `prediction`, `store`, `metadata`, `service_tier`,
    `web_search_options`, `stream_options`, image `detail`, message `name`, non-string
    `enum`s in schemas, the deprecated `functions`/`function_call`, unknown fields;
  - not produced: thought summaries, thought signatures on text parts, code execution,
    grounding and citation metadata are dropped from answers; `logprobs` is always null;
    safety settings stay the API's own;
  - not checked: Gemini-side limits (penalties or candidate counts a model refuses, tool
    names it refuses, a conversation without a user turn) reach the upstream and come back
    as its 400.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeGuard
from urllib.parse import quote, urlsplit

import httpx

from ..errors import InvalidRequest, UpstreamStatusError, UpstreamUnavailable, upstream_status_error
from ..hookspecs import hookimpl
from ..provider import Completion, ProviderKind, StreamChunk, UpstreamCall, Usage
from ..settings import ProviderSettings
from ..upstream import Endpoint
from ..wire.openai import content_text, dumps, invalid_value, unsupported_part

MODELS = "Gemini models"
"""How errors name what cannot be sent to this kind."""

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
SKIP_SIGNATURE = "skip_thought_signature_validator"
"""Google's documented stand-in for a thought signature the history does not have."""

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "MODEL_ARMOR": "content_filter",
}
ERROR_STATUSES = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "ALREADY_EXISTS": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".heic": "image/heic",
    ".heif": "image/heif",
}
AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}
SCHEMA_TYPES = {
    "string": "STRING",
    "number": "NUMBER",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "array": "ARRAY",
    "object": "OBJECT",
}
SCHEMA_FORMATS = {
    "STRING": frozenset({"enum", "date-time"}),
    "NUMBER": frozenset({"float", "double"}),
    "INTEGER": frozenset({"int32", "int64"}),
}
SCHEMA_KEPT = (
    "title",
    "description",
    "default",
    "pattern",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minimum",
    "maximum",
)
"""JSON Schema keywords Gemini's Schema has under the same name and meaning."""


# --- request: OpenAI chat completions -> generateContent --------------------------------


def to_gemini_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """The generateContent body for an OpenAI chat completions body (the model goes in the URL)."""
    system: list[str] = []
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    tool_names: dict[str, str] = {}
    """tool call id -> function name: a functionResponse is matched by name."""
    for index, message in enumerate(body.get("messages") or []):
        where = f"messages[{index}]"
        role = message.get("role")
        if role in ("system", "developer"):
            text = content_text(message.get("content"), where, MODELS)
            if text:
                system.append(text)
            continue
        if role == "user":
            parts = _user_parts(message.get("content"), where)
            turn = "user"
        elif role == "assistant":
            parts = _model_parts(message, where, tool_names)
            turn = "model"
        elif role == "tool":
            parts = [_function_response(message, where, tool_names)]
            turn = "user"
        else:
            raise InvalidRequest(
                f"Role {role!r} is not supported by Gemini models.",
                param=f"{where}.role",
                code="unsupported_value",
            )
        if not parts:
            continue
        if turns and turns[-1][0] == turn:
            turns[-1][1].extend(parts)
        else:
            turns.append((turn, parts))

    request: dict[str, Any] = {}
    if system:
        request["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    request["contents"] = [{"role": role, "parts": parts} for role, parts in turns]
    tools = body.get("tools")
    if tools:
        if not isinstance(tools, list):
            raise invalid_value("tools", "must be an array of tools")
        declarations = [_declaration(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
        mode, names, only = _tool_choice(body.get("tool_choice"))
        if only is not None:
            declarations = [d for d in declarations if d["name"] in only]
        request["tools"] = [{"functionDeclarations": declarations}]
        if mode != "AUTO" or names:
            config: dict[str, Any] = {"mode": mode}
            if names:
                config["allowedFunctionNames"] = names
            request["toolConfig"] = {"functionCallingConfig": config}
    generation = _generation_config(body)
    if generation:
        request["generationConfig"] = generation
    return request


def _generation_config(body: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if _is_int(value):
            config["maxOutputTokens"] = value
            break
    if _is_number(body.get("temperature")):
        config["temperature"] = body["temperature"]
    if _is_number(body.get("top_p")):
        config["topP"] = body["top_p"]
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    if any(isinstance(s, str) and s for s in stops):
        config["stopSequences"] = [s for s in stops if isinstance(s, str) and s]
    n = body.get("n")
    if _is_int(n) and n > 1:
        config["candidateCount"] = n
    if _is_int(body.get("seed")):
        config["seed"] = body["seed"]
    # Zero is OpenAI's default and a no-op; not sending it spares models that take no
    # penalties a needless 400.
    for key, name in (
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        value = body.get(key)
        if _is_number(value) and value != 0:
            config[name] = value
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
    if kind == "json_schema":
        spec = response_format.get("json_schema") if isinstance(response_format, dict) else None
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            cut = to_gemini_schema(schema, "response_format.json_schema.schema", ordered=True)
            if _constrains(cut):
                config["responseSchema"] = cut
    return config


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _user_parts(content: object, where: str) -> list[dict[str, Any]]:
    # Gemini refuses empty text parts; an empty text says nothing.
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for i, part in enumerate(content if isinstance(content, list) else []):
        kind = part.get("type") if isinstance(part, dict) else None
        here = f"{where}.content[{i}]"
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise invalid_value(f"{here}.text", "must be a string")
            if text:
                parts.append({"text": text})
        elif kind == "image_url":
            parts.append(_image(part.get("image_url"), here))
        elif kind == "input_audio":
            parts.append(_audio(part.get("input_audio"), here))
        else:
            raise unsupported_part(part, here, MODELS)
    return parts


def _image(image_url: object, where: str) -> dict[str, Any]:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if isinstance(url, str) and url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        media_type, *params = header.split(";")
        if comma and "base64" in params and media_type:
            return {"inlineData": {"mimeType": media_type, "data": data}}
    elif isinstance(url, str) and url.startswith(("http://", "https://")):
        path = urlsplit(url).path.lower()
        mime_type = next((t for ext, t in IMAGE_TYPES.items() if path.endswith(ext)), None)
        if mime_type is None:
            raise InvalidRequest(
                "Gemini needs the type of an image URL, and this URL's path does not end in "
                f"{', '.join(IMAGE_TYPES)}; send the image as a base64 data URL instead.",
                param=f"{where}.image_url",
                code="invalid_value",
            )
        return {"fileData": {"mimeType": mime_type, "fileUri": url}}
    raise InvalidRequest(
        "An image must be a base64 data URL or an http(s) URL.",
        param=f"{where}.image_url",
        code="invalid_value",
    )


def _audio(audio: object, where: str) -> dict[str, Any]:
    audio = audio if isinstance(audio, dict) else {}
    data, mime_type = audio.get("data"), AUDIO_TYPES.get(str(audio.get("format")))
    if not isinstance(data, str) or mime_type is None:
        raise InvalidRequest(
            "Audio input must be base64 `data` with a `format` of wav or mp3.",
            param=f"{where}.input_audio",
            code="invalid_value",
        )
    return {"inlineData": {"mimeType": mime_type, "data": data}}


def _model_parts(
    message: Mapping[str, Any], where: str, tool_names: dict[str, str]
) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        texts = [content]
    else:
        texts = [
            str(part.get("text") or "")
            for part in (content if isinstance(content, list) else [])
            if isinstance(part, dict) and part.get("type") == "text"
        ]
    parts: list[dict[str, Any]] = [{"text": text} for text in texts if text]
    tool_calls = message.get("tool_calls") or []
    if not isinstance(tool_calls, list):
        raise invalid_value(f"{where}.tool_calls", "must be an array")
    calls: list[dict[str, Any]] = []
    for i, call in enumerate(tool_calls):
        here = f"{where}.tool_calls[{i}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise invalid_value(f"{here}.function", "must be an object")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_value(f"{here}.function.name", "must be a non-empty string")
        try:
            args = json.loads(function.get("arguments") or "{}")
        except (TypeError, ValueError):
            args = None
        if not isinstance(args, dict):
            raise InvalidRequest(
                "Tool-call arguments must be a JSON object to be sent to a Gemini model.",
                param=f"{here}.function.arguments",
                code="invalid_value",
            )
        if isinstance(call.get("id"), str):
            tool_names[call["id"]] = name
        part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
        signature = _signature_of(call)
        if signature:
            part["thoughtSignature"] = signature
        calls.append(part)
    if calls and not any("thoughtSignature" in part for part in calls):
        # Gemini 3 refuses a function call without the signature of the thinking behind
        # it; history from another model (or a client that dropped it) has none.
        calls[0]["thoughtSignature"] = SKIP_SIGNATURE
    return parts + calls


def _signature_of(call: Mapping[str, Any]) -> str | None:
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) and signature else None


def _function_response(
    message: Mapping[str, Any], where: str, tool_names: Mapping[str, str]
) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    name = tool_names.get(call_id) if isinstance(call_id, str) else None
    if name is None:
        raise InvalidRequest(
            "A tool message must answer a tool call of an earlier assistant message: "
            "Gemini matches results to calls by the function's name.",
            param=f"{where}.tool_call_id",
            code="invalid_value",
        )
    text = content_text(message.get("content"), where, MODELS)
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    response = parsed if isinstance(parsed, dict) else {"output": text}
    return {"functionResponse": {"name": name, "response": response}}


def _declaration(tool: object, where: str) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise invalid_value(where, "must be an object")
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, dict):
        raise InvalidRequest(
            f"Only function tools can be sent to a Gemini model, not {tool.get('type')!r}.",
            param=f"{where}.type",
            code="unsupported_value",
        )
    declaration: dict[str, Any] = {"name": function.get("name")}
    if function.get("description"):
        declaration["description"] = function["description"]
    parameters = function.get("parameters")
    if parameters is not None:
        schema = to_gemini_schema(parameters, f"{where}.function.parameters")
        if _constrains(schema):
            declaration["parameters"] = schema
    return declaration


def _constrains(schema: Mapping[str, Any]) -> bool:
    """False for a schema that allows anything: Gemini refuses an OBJECT without properties."""
    return bool(schema) and not (schema.get("type") == "OBJECT" and not schema.get("properties"))


def _tool_choice(choice: object) -> tuple[str, list[str], set[str] | None]:
    """(mode, allowedFunctionNames, the only declarations to send or None for all)."""
    if choice == "none":
        return "NONE", [], None
    if choice == "required":
        return "ANY", [], None
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools")
        allowed = allowed if isinstance(allowed, dict) else {}
        only = {
            str(tool["function"].get("name"))
            for tool in allowed.get("tools") or []
            if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
        }
        return ("ANY" if allowed.get("mode") == "required" else "AUTO"), [], only
    if isinstance(choice, dict):
        function = choice.get("function")
        if isinstance(function, dict) and function.get("name"):
            return "ANY", [str(function["name"])], None
    return "AUTO", [], None


def to_gemini_schema(schema: object, param: str, *, ordered: bool = False) -> dict[str, Any]:
    """Gemini's OpenAPI subset of a JSON Schema: references inlined, unsupported keys dropped.

    `ordered` adds `propertyOrdering` (Gemini otherwise orders an answer's keys
    alphabetically), for response schemas.
    """
    defs: dict[str, Any] = {}
    if isinstance(schema, dict):
        for key in ("definitions", "$defs"):
            if isinstance(schema.get(key), dict):
                defs.update(schema[key])
    return _cut(schema, defs, param, ordered, ())


def _cut(
    schema: object, defs: Mapping[str, Any], param: str, ordered: bool, seen: tuple[str, ...]
) -> dict[str, Any]:
    if not isinstance(schema, dict):
        return {}  # `true` or a stray value: anything goes
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rpartition("/")[2]
        if ref not in (f"#/$defs/{name}", f"#/definitions/{name}") or name not in defs:
            raise InvalidRequest(
                f"The schema reference {ref!r} cannot be resolved; Gemini takes no "
                "references, so only local ones ('#/$defs/...') can be inlined.",
                param=param,
                code="invalid_value",
            )
        if name in seen:
            raise InvalidRequest(
                f"The schema is recursive ({ref!r}), which Gemini cannot express.",
                param=param,
                code="unsupported_value",
            )
        rest = {key: value for key, value in schema.items() if key != "$ref"}
        return _cut({**defs[name], **rest}, defs, param, ordered, (*seen, name))
    all_of = schema.get("allOf")
    if isinstance(all_of, list):
        own = {key: value for key, value in schema.items() if key != "allOf"}
        merged = _cut(own, defs, param, ordered, seen)
        for part in all_of:
            merged = _merge(merged, _cut(part, defs, param, ordered, seen), ordered)
        return merged

    out: dict[str, Any] = {}
    nullable = schema.get("nullable") is True
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        nullable = nullable or len(kinds) < len(kind)
        if len(kinds) > 1:
            out["anyOf"] = [{"type": SCHEMA_TYPES[k]} for k in kinds if k in SCHEMA_TYPES]
        kind = kinds[0] if len(kinds) == 1 else None
    if kind == "null":
        nullable = True
    elif isinstance(kind, str) and kind in SCHEMA_TYPES:
        out["type"] = SCHEMA_TYPES[kind]
    for key in SCHEMA_KEPT:
        if key in schema:
            out[key] = schema[key]

    enum = schema.get("enum")
    if "const" in schema and enum is None:
        enum = [schema["const"]]
    if isinstance(enum, list):
        nullable = nullable or None in enum
        values = [value for value in enum if value is not None]
        # Gemini's enum is a string format; other enums would be refused, so they go.
        if values and all(isinstance(value, str) for value in values):
            out["enum"] = values
            out.setdefault("type", "STRING")
    format_ = schema.get("format")
    if isinstance(format_, str) and format_ in SCHEMA_FORMATS.get(out.get("type", ""), ()):
        out["format"] = format_

    items = schema.get("items")
    if isinstance(items, dict):
        out["items"] = _cut(items, defs, param, ordered, seen)
    properties = schema.get("properties")
    if isinstance(properties, dict) and properties:
        out.setdefault("type", "OBJECT")
        out["properties"] = {
            str(name): _cut(sub, defs, param, ordered, seen) for name, sub in properties.items()
        }
        required = schema.get("required")
        names = [n for n in required if n in properties] if isinstance(required, list) else []
        if names:
            out["required"] = names
        if ordered and len(properties) > 1:
            out["propertyOrdering"] = [str(name) for name in properties]

    branches = schema.get("anyOf", schema.get("oneOf"))
    if isinstance(branches, list):
        cut = []
        for branch in branches:
            if isinstance(branch, dict) and branch.get("type") == "null":
                nullable = True
            else:
                cut.append(_cut(branch, defs, param, ordered, seen))
        if len(cut) == 1:
            out = {**cut[0], **out}  # Optional[X]: X, with the outer description
        elif cut:
            out["anyOf"] = cut
    if nullable:
        out["nullable"] = True
    return out


def _merge(first: dict[str, Any], second: Mapping[str, Any], ordered: bool) -> dict[str, Any]:
    """`allOf`: both schemas' properties and requirements; otherwise the first one's keys win."""
    merged = {**second, **first}
    properties = dict(first.get("properties", {}))
    properties.update(
        (k, v) for k, v in second.get("properties", {}).items() if k not in properties
    )
    if properties:
        merged["properties"] = properties
    required = [*first.get("required", []), *second.get("required", [])]
    if required:
        merged["required"] = list(dict.fromkeys(required))
    if ordered and len(properties) > 1:
        merged["propertyOrdering"] = list(properties)
    return merged


# --- response: GenerateContentResponse -> OpenAI chat completions -----------------------


def to_chat_completion(
    response: Mapping[str, Any], model: str = "", n: int = 1, created: int | None = None
) -> tuple[dict[str, Any], Usage]:
    """The `chat.completion` for a GenerateContentResponse, and its usage.

    `model` names the answer when the response has no `modelVersion`; `n` is how many
    choices a blocked prompt gets. No candidates and no block: `choices` is empty.
    """
    choices: list[dict[str, Any]] = []
    for position, candidate in enumerate(response.get("candidates") or []):
        if not isinstance(candidate, dict):
            continue
        texts, tool_calls = _read_parts(candidate)
        reply: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(texts) if texts or not tool_calls else None,
            "refusal": None,
        }
        if tool_calls:
            reply["tool_calls"] = tool_calls
        reason = finish_reason(candidate.get("finishReason"), bool(tool_calls))
        choices.append(
            {
                "index": _index(candidate, position),
                "message": reply,
                "finish_reason": reason,
                "logprobs": None,
            }
        )
    if not choices and blocked(response):
        empty = {"role": "assistant", "content": "", "refusal": None}
        choices = [
            {
                "index": i,
                "message": dict(empty),
                "finish_reason": "content_filter",
                "logprobs": None,
            }
            for i in range(max(n, 1))
        ]
    openai_usage, usage = _usage(response.get("usageMetadata"))
    payload = {
        "id": str(response.get("responseId") or _completion_id()),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": str(response.get("modelVersion") or model),
        "choices": sorted(choices, key=lambda choice: choice["index"]),
        "usage": openai_usage,
    }
    return payload, usage


def finish_reason(reason: object, called: bool = False) -> str:
    mapped = FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"
    return "tool_calls" if called and mapped == "stop" else mapped


def blocked(response: Mapping[str, Any]) -> bool:
    feedback = response.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))


def _index(candidate: Mapping[str, Any], position: int) -> int:
    index = candidate.get("index")
    return index if _is_int(index) else position


def _read_parts(candidate: Mapping[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The answer's texts and tool calls; thought summaries are the model's, not the answer."""
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict) or part.get("thought") is True:
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part.get("functionCall"), dict):
            calls.append(_tool_call(part))
    return texts, calls


def _tool_call(part: Mapping[str, Any]) -> dict[str, Any]:
    call = part["functionCall"]
    tool_call: dict[str, Any] = {
        "id": "call_" + secrets.token_hex(12),
        "type": "function",
        "function": {
            "name": str(call.get("name") or ""),
            "arguments": dumps(call.get("args") or {}).decode(),
        },
    }
    signature = part.get("thoughtSignature")
    if isinstance(signature, str) and signature:
        tool_call["extra_content"] = {"google": {"thought_signature": signature}}
    return tool_call


def _completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def _count(usage: Mapping[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if _is_int(value) else 0


def _usage(raw: object) -> tuple[dict[str, Any], Usage]:
    usage = raw if isinstance(raw, dict) else {}
    # promptTokenCount already includes the cached content.
    prompt = _count(usage, "promptTokenCount") + _count(usage, "toolUsePromptTokenCount")
    thoughts = _count(usage, "thoughtsTokenCount")
    completion = _count(usage, "candidatesTokenCount") + thoughts
    cached = _count(usage, "cachedContentTokenCount")
    openai_usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }
    return openai_usage, Usage(prompt, completion, cached)


def error_status(error: object) -> int:
    """The HTTP status of a google.rpc error (for an `{"error": ...}` inside a stream)."""
    if not isinstance(error, dict):
        return 500
    code = error.get("code")
    if _is_int(code) and 400 <= code <= 599:
        return code
    status = error.get("status")
    return ERROR_STATUSES.get(status, 500) if isinstance(status, str) else 500


def error_event(data: bytes, provider: str) -> UpstreamStatusError:
    try:
        payload = json.loads(data)
    except ValueError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    return upstream_status_error(error_status(error), data, provider)


class StreamTranslator:
    """Turns streamed GenerateContentResponses into `chat.completion.chunk` payloads.

    Every streamed response is a complete GenerateContentResponse holding the next piece of
    each candidate. A choice's `role` chunk is held back until its first content, so an
    upstream that fails before any content fails before the first chunk and the request
    can still fall back. The stream is complete once every candidate seen has a
    finishReason (or the prompt was blocked).
    """

    def __init__(
        self, include_usage: bool, model: str = "", n: int = 1, created: int | None = None
    ) -> None:
        self.include_usage = include_usage
        self.created = int(time.time()) if created is None else created
        self.id = ""
        self.model = model
        self.n = max(n, 1)
        self._usage: dict[str, Any] = {}
        self._roles: set[int] = set()
        self._tools: dict[int, int] = {}
        """choice index -> tool calls sent so far (the next tool call's index)."""
        self._seen: set[int] = set()
        self._done: set[int] = set()
        self._blocked = False

    @property
    def finished(self) -> bool:
        return self._blocked or (bool(self._seen) and self._seen <= self._done)

    def feed(self, response: Mapping[str, Any]) -> list[StreamChunk]:
        if not self.id:
            self.id = str(response.get("responseId") or _completion_id())
        if response.get("modelVersion"):
            self.model = str(response["modelVersion"])
        if isinstance(response.get("usageMetadata"), dict):
            self._usage = response["usageMetadata"]  # cumulative: the latest is the total
        chunks: list[StreamChunk] = []
        candidates = response.get("candidates")
        for position, candidate in enumerate(candidates if isinstance(candidates, list) else []):
            if not isinstance(candidate, dict):
                continue
            index = _index(candidate, position)
            if index in self._done:
                continue
            self._seen.add(index)
            texts, calls = _read_parts(candidate)
            if any(texts):
                chunks += self._delta(index, {"content": "".join(texts)})
            for call in calls:
                position_ = self._tools.get(index, 0)
                self._tools[index] = position_ + 1
                chunks += self._delta(index, {"tool_calls": [{"index": position_, **call}]})
            reason = candidate.get("finishReason")
            if isinstance(reason, str) and reason:
                self._done.add(index)
                chunks += self._delta(index, {}, finish_reason(reason, index in self._tools))
        if not self._seen and not self._blocked and blocked(response):
            self._blocked = True
            for index in range(self.n):
                chunks += self._delta(index, {}, "content_filter")
        if chunks and self.finished and not self.include_usage:  # the core still learns it
            chunks[-1].usage = _usage(self._usage)[1]
        return chunks

    def final(self) -> list[StreamChunk]:
        """What follows the last response: the usage chunk, if it was asked for."""
        if not self.include_usage:
            return []
        openai_usage, usage = _usage(self._usage)
        payload = {**self._envelope(), "choices": [], "usage": openai_usage}
        return [StreamChunk(payload, usage)]

    def _envelope(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
        }

    def _chunk(self, index: int, delta: dict[str, Any], finish: str | None) -> StreamChunk:
        choice = {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
        return StreamChunk({**self._envelope(), "choices": [choice]})

    def _delta(
        self, index: int, delta: dict[str, Any], finish: str | None = None
    ) -> list[StreamChunk]:
        chunks = []
        if index not in self._roles:
            self._roles.add(index)
            chunks.append(self._chunk(index, {"role": "assistant", "content": ""}, None))
        chunks.append(self._chunk(index, delta, finish))
        return chunks


# --- the provider -----------------------------------------------------------------------


def model_path(model: str) -> str:
    """The resource name of a model: `gemini-2.5-flash` -> `models/gemini-2.5-flash`."""
    name = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
    return quote(name, safe="/")


class GeminiProvider:
    def __init__(self, settings: ProviderSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self._client = client
        self._base_url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._headers = {"content-type": "application/json"}
        api_key = settings.api_key()
        if api_key:
            self._headers["x-goog-api-key"] = api_key
        self._endpoints: dict[tuple[str, bool], Endpoint] = {}
        """(model, stream) -> its Endpoint: Gemini puts the model in the URL."""

    def __repr__(self) -> str:  # never the headers: they hold the key
        return f"GeminiProvider(name={self.settings.name!r}, url={self._base_url!r})"

    def endpoint(self, model: str, stream: bool) -> Endpoint:
        endpoint = self._endpoints.get((model, stream))
        if endpoint is None:
            method = "streamGenerateContent?alt=sse" if stream else "generateContent"
            url = f"{self._base_url}/{model_path(model)}:{method}"
            endpoint = Endpoint(self._client, url, self._headers, self.settings)
            self._endpoints[(model, stream)] = endpoint
        return endpoint

    async def complete(self, call: UpstreamCall) -> Completion:
        model = str(call.body.get("model") or "")
        endpoint = self.endpoint(model, stream=False)
        raw = await endpoint.post(dumps(to_gemini_request(call.body)), call.headers)
        response = endpoint.json(raw)
        if "error" in response:
            raise error_event(raw, self.settings.name)
        payload, usage = to_chat_completion(response, model, _choices(call.body))
        if not payload["choices"]:
            raise UpstreamUnavailable(
                f"Upstream {self.settings.name!r} sent an answer without candidates.",
                code="upstream_malformed_response",
            )
        return Completion(payload, usage)

    async def stream(self, call: UpstreamCall) -> AsyncIterator[StreamChunk]:
        model = str(call.body.get("model") or "")
        endpoint = self.endpoint(model, stream=True)
        options = call.body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        translator = StreamTranslator(include_usage, model, _choices(call.body))
        body = dumps(to_gemini_request(call.body))
        async with contextlib.aclosing(endpoint.events(body, call.headers)) as events:
            async for event in events:
                response = endpoint.json(event.data)
                if "error" in response:
                    raise error_event(event.data, self.settings.name)
                for chunk in translator.feed(response):
                    yield chunk
        # Gemini marks no end of stream: the connection closing after every candidate
        # finished is the end, before that it is a cut.
        if not translator.finished:
            raise endpoint.truncated()
        for chunk in translator.final():
            yield chunk

    async def aclose(self) -> None:
        return None


def _choices(body: Mapping[str, Any]) -> int:
    n = body.get("n")
    return n if _is_int(n) and n > 1 else 1


@hookimpl(trylast=True)
def register_providers() -> ProviderKind:
    return ProviderKind("gemini", GeminiProvider)
