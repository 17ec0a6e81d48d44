"""sidecar.cel on every installed engine: the same expectations hold for each."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from sidecar import cel
from sidecar.cel import (
    ENGINES,
    CelCompileError,
    CelError,
    CelEvalError,
    Environment,
    available_engines,
    portability_warnings,
    resolve_engine,
)

VARIABLES = {"request": "map", "signals": "map", "tiers": "map", "models": "map"}


def contains_any(text: str, items: list[str]) -> bool:
    return any(item in text for item in items)


def activation() -> dict[str, Any]:
    return {
        "request": {
            "model": "auto",
            "stream": False,
            "tokens": 120,
            "text": "hi, my password is hunter2",
            "has_tools": False,
            "headers": {"x-team": "a"},
            "max_tokens": None,
            "list": [1, 2.5, "a", None],
        },
        "signals": {"tokens": {"total": 120}, "task": {"kind": "code", "complexity": 0.7}},
        "tiers": {},
        "models": {"small": {"price": 0.5}},
    }


@pytest.fixture(params=available_engines())
def env(request: pytest.FixtureRequest) -> Environment:
    return Environment(request.param, VARIABLES, {"contains_any": contains_any})


def evaluate(env: Environment, source: str, data: dict[str, Any] | None = None) -> Any:
    return env.compile(source).evaluate(activation() if data is None else data)


def test_some_engine_is_installed() -> None:
    assert available_engines()
    assert set(available_engines()) <= set(ENGINES)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('signals.task.kind == "code" && request.tokens > 1000', False),
        ('signals.task.kind == "code" && request.tokens > 100', True),
        ('"x-team" in request.headers && request.headers["x-team"] == "a"', True),
        ('request.text.contains("password")', True),
        ('request.text.startsWith("hi") && request.text.endsWith("2")', True),
        ('request.text.matches("pass(word)?")', True),
        ("size(request.text) > 10", True),
        ("request.text.size()", 26),
        ("request.max_tokens == null", True),
        ("request.max_tokens != null && request.max_tokens > 10", False),
        ('contains_any(request.text, ["a", "b"])', True),
        ('contains_any(request.text, ["zz"])', False),
        ("has(request.model) && !has(request.nope)", True),
        ("has(request.max_tokens)", True),
        ("request.nope || true", True),
        ("request.nope && false", False),
        ("request.tokens > 100 ? 'big' : 'small'", "big"),
        ('request.list.exists(x, x == "a")', True),
        ("request.list.filter(x, x != null).size()", 3),
        ("models.all(m, models[m].price < 1.0)", True),
        ('request.model in ["auto", "large"]', True),
        ("-7 / 2", -3),
        ("-7 % 3", -1),
        ("1.0 / 0.0", float("inf")),
        ("double(request.tokens) * 1.5", 180.0),
    ],
)
def test_expressions(env: Environment, source: str, expected: Any) -> None:
    assert evaluate(env, source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # Mixed numeric types compare by value (raw cel-python would fail these).
        ("request.tokens > 1000.5", False),
        ("request.tokens > 100.5", True),
        ("request.tokens == 120.0", True),
        ("request.tokens == 120u", True),
        ("signals.task.complexity > 0", True),
        ("request.tokens in [120.0, 5]", True),
        ("request.list == [1.0, 2.5, 'a', null]", True),
        # Values of different types are unequal rather than an error.
        ("request.max_tokens == 100", False),
        ("request.text == 1", False),
        ("request.stream == 0", False),
        ('1 in request.list && "b" in request.list', False),
    ],
)
def test_cross_type_comparisons(env: Environment, source: str, expected: bool) -> None:
    assert evaluate(env, source) is expected


def test_results_are_plain_python(env: Environment) -> None:
    result = evaluate(env, '[request, signals.task.complexity, b"x", type(1), 1 == 1, "s"]')
    assert result == [activation()["request"], 0.7, b"x", "int", True, "s"]

    def check(value: Any) -> None:
        assert type(value) in (bool, int, float, str, bytes, list, dict, type(None))
        if isinstance(value, list):
            for item in value:
                check(item)
        if isinstance(value, dict):
            for key, item in value.items():
                check(key)
                check(item)

    check(result)
    moments = evaluate(env, 'duration("1.5s") + timestamp("2024-01-01T00:00:00Z")')
    assert moments == datetime.datetime(2024, 1, 1, 0, 0, 1, 500000, tzinfo=datetime.UTC)
    assert type(moments) is datetime.datetime
    assert type(evaluate(env, 'duration("90s")')) is datetime.timedelta
    assert type(evaluate(env, "request.tokens > 1")) is bool
    assert type(evaluate(env, "request.tokens")) is int
    assert evaluate(env, "request.max_tokens") is None


@pytest.mark.parametrize(
    "source",
    [
        "request.missing",
        "request.missing == null",
        'request.headers["nope"]',
        "has(signals.nope.kind)",
        "request.max_tokens > 1",
        "size(request.max_tokens)",
        "request.tokens / 0",
        "request.tokens % 0",
        "request.tokens + 1.5",
        "signals.task.complexity * 10",
        "9223372036854775807 + 1",
        'int("x")',
        "request.text[0]",
        "request.list[-1]",
        "request.list[4]",
        "request.nope ? 1 : 2",
        'request.text.matches("[")',
        "request.list.all(x, x > 0)",
    ],
)
def test_evaluation_errors(env: Environment, source: str) -> None:
    program = env.compile(source)
    with pytest.raises(CelEvalError) as caught:
        program.evaluate(activation())
    assert type(caught.value) is CelEvalError
    assert caught.value.message
    assert "celpy" not in caught.value.message
    assert "Activation(" not in caught.value.message


def test_missing_variable_is_an_evaluation_error(env: Environment) -> None:
    program = env.compile("tiers == {}")
    assert program.evaluate(activation()) is True
    with pytest.raises(CelEvalError):
        program.evaluate({"request": {}})


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("request.tokens >", 1),
        ("1 +", 1),
        ("request.tokens >>> 1", 1),
        ("request.tokens > 1 &&\n  undeclared > 2", 2),
        ("nope(1)", 1),
        ("request.text.lowerAscii()", 1),
        ("request.text.contains_any(['a'])", 1),
        ("contains_any(request.text)", 1),
        ('contains(request.text, "a")', 1),
        ('has(request.headers["x"])', 1),
        ("has(request)", 1),
        ("[1, 2].reduce(a, x, a + x, 0)", 1),
        ("request.?max_tokens", 1),
    ],
)
def test_compile_errors_have_a_position(env: Environment, source: str, line: int) -> None:
    with pytest.raises(CelCompileError) as caught:
        env.compile(source)
    error = caught.value
    assert error.line == line
    assert error.column is not None
    assert 1 <= error.column <= len(source.splitlines()[line - 1]) + 1
    assert f"line {line}, column {error.column}: " in str(error)
    assert isinstance(error, CelError)


def test_compile_error_names_the_undeclared_reference(env: Environment) -> None:
    with pytest.raises(CelCompileError, match="undeclared reference to 'undeclared'") as caught:
        env.compile("request.tokens > 1 &&\n  undeclared > 2")
    assert caught.value.column == 3


def test_program_keeps_its_source(env: Environment) -> None:
    assert env.compile("true").source == "true"
    assert env.engine in ENGINES


def test_plugin_functions(env: Environment) -> None:
    seen: list[tuple[Any, ...]] = []

    def record(*args: Any) -> Any:
        seen.append(args)
        return {"echo": list(args), "n": None}

    def optional(a: int, b: int = 10) -> int:
        return a + b

    def broken(value: Any) -> Any:
        raise KeyError("boom")

    env = Environment(
        env.engine, VARIABLES, {"record": record, "optional": optional, "broken": broken}
    )
    result = env.compile("record(request.headers, request.max_tokens, [1, 2.5])").evaluate(
        activation()
    )
    assert result == {"echo": [{"x-team": "a"}, None, [1, 2.5]], "n": None}
    assert seen == [({"x-team": "a"}, None, [1, 2.5])]
    assert [type(arg) for arg in seen[0]] == [dict, type(None), list]
    assert env.compile("optional(1) + optional(1, 2)").evaluate({}) == 14
    with pytest.raises(CelCompileError):
        env.compile("optional(1, 2, 3)")
    with pytest.raises(CelEvalError, match=r"broken\(\) failed: KeyError"):
        env.compile("broken(1)").evaluate({})
    assert env.compile("broken(1) || true").evaluate({}) is True


@pytest.mark.parametrize("returned", [{1, 2}, (1, 2), 2**64, object()])
def test_plugin_function_results_must_be_cel_values(env: Environment, returned: Any) -> None:
    env = Environment(env.engine, {}, {"weird": lambda: returned})
    with pytest.raises(CelEvalError):
        env.compile("weird()").evaluate({})


@pytest.mark.parametrize("name", ["size", "has", "not an identifier", "exists"])
def test_plugin_function_names_are_checked(name: str) -> None:
    with pytest.raises(CelError, match="plugin function name"):
        Environment(resolve_engine("auto"), VARIABLES, {name: contains_any})


def test_declared_variable_types(env: Environment) -> None:
    env = Environment(
        env.engine,
        {
            "m": "map",
            "l": "list",
            "d": "dyn",
            "b": "bool",
            "i": "int",
            "f": "double",
            "s": "string",
        },
    )
    data = {"m": {"k": 1}, "l": [1], "d": None, "b": True, "i": 2, "f": 1, "s": "x"}
    program = env.compile(
        "m.k == 1 && l[0] == 1 && d == null && b && i == 2 && f == 1.0 && s == 'x'"
    )
    assert program.evaluate(data) is True
    assert env.compile("f").evaluate(data) == 1.0
    wrong: list[tuple[str, Any]] = [("m", None), ("l", {}), ("b", 1), ("i", 1.5), ("s", None)]
    for name, value in wrong:
        with pytest.raises(CelEvalError):
            env.compile(name).evaluate({**data, name: value})
    with pytest.raises(CelError, match="unsupported CEL type"):
        Environment(env.engine, {"x": "timestamp"})


def test_unsupported_activation_values_fail_only_their_variable(env: Environment) -> None:
    data = activation()
    data["tiers"] = {"bad": (1, 2)}
    data["models"] = {"huge": 2**70}
    assert env.compile("request.tokens == 120").evaluate(data) is True
    for source in ("tiers.bad", "size(tiers)", "models.huge", "has(models.other)"):
        with pytest.raises(CelEvalError):
            env.compile(source).evaluate(data)


def test_prepared_activation_serves_many_programs(env: Environment) -> None:
    prepared = env.prepare(activation())
    assert dict(prepared) == activation()
    assert env.compile("request.tokens > 100").evaluate(prepared) is True
    assert env.compile('signals.task.kind == "code"').evaluate(prepared) is True
    other = Environment(env.engine, VARIABLES)
    assert other.compile("request.tokens").evaluate(prepared) == 120


def test_resolve_engine() -> None:
    assert resolve_engine("auto") == available_engines()[0]
    for engine in available_engines():
        assert resolve_engine(engine) == engine
    with pytest.raises(CelError, match="unknown CEL engine 'lua'"):
        resolve_engine("lua")
    with pytest.raises(CelError, match="unknown CEL engine 'auto'"):
        Environment("auto", VARIABLES)


def test_resolve_engine_auto_imports_only_the_engine_it_picks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = cel._module
    imported: list[str] = []

    def module(engine: str) -> object:
        imported.append(engine)
        return real(engine)

    monkeypatch.setattr(cel, "_module", module)
    engine = resolve_engine("auto")
    assert imported == [engine]


def test_resolve_engine_without_native(monkeypatch: pytest.MonkeyPatch) -> None:
    real = cel._module
    monkeypatch.setattr(cel, "_module", lambda engine: None if engine == "native" else real(engine))
    assert available_engines() == ("python",)
    assert resolve_engine("auto") == "python"
    with pytest.raises(CelError, match="not installed: pip install cel-expr-python"):
        resolve_engine("native")
    monkeypatch.setattr(cel, "_module", lambda engine: None)
    with pytest.raises(CelError, match="no CEL engine is installed"):
        resolve_engine("auto")


@pytest.mark.parametrize(
    ("source", "variables", "count"),
    [
        ("1 < 1.5", {}, 1),
        ("-1 < 1.5", {}, 1),
        ("1 == null", {}, 1),
        ('"a" + 1', {}, 1),
        ("1u == 1", {}, 1),
        ("x ? 1 : 2.5", {}, 1),
        ('x ? "a" : null', {}, 1),
        ("(1 < 1.5) && 2 == 2.0", {}, 2),
        ("n > 1000.5", {"n": "int"}, 1),
        ("n > -1.5", {"n": "int"}, 1),
        ("d > 1", {"d": "double"}, 1),
        ("m == null", {"m": "map"}, 1),
        # Nothing static to object to:
        ("request.tokens > 1000.5", VARIABLES, 0),
        ("n > 1000.5", {}, 0),
        ("m.d > 1", {"d": "double"}, 0),
        ("a + 1 < 1.5", {}, 0),
        ("1 < 1.5 + a", {}, 0),
        ("x ? 1 : 2.5 + y", {}, 0),
        ('1 == "abc".size()', {}, 0),
        ("1 - 2 - 3.0", {}, 0),
        ("[1, 2.5, 'a']", {}, 0),
        ('"1 < 1.5" == s // 1 < 1.5', {}, 0),
        ("size(x) - 1 < 2.5", {}, 0),
        ("x ?", {}, 0),
        ("-", {}, 0),
        ("", {}, 0),
    ],
)
def test_portability_warnings(source: str, variables: dict[str, str], count: int) -> None:
    warnings = portability_warnings(source, variables)
    assert len(warnings) == count, warnings
    for warning in warnings:
        assert warning.startswith("column ")
        assert "native engine rejects" in warning


@pytest.mark.skipif(len(available_engines()) < 2, reason="needs both engines")
@pytest.mark.parametrize(
    "source", ["1 < 1.5", "1 == null", "x ? 1 : 2.5", "n > 1000.5", "d > 1", "m == null"]
)
def test_portability_warnings_match_the_engines(source: str) -> None:
    variables = {"n": "int", "d": "double", "m": "map", "x": "bool"}
    assert portability_warnings(source, variables)
    with pytest.raises(CelCompileError):
        Environment("native", variables).compile(source)
    Environment("python", variables).compile(source)
