"""CEL policy expressions on two interchangeable engines.

This is the only module that imports a CEL engine. ``native`` is cel-expr-python (the official
C++ runtime, imported as ``cel_expr_python.cel``); ``python`` is cel-python (pure Python,
imported as ``celpy``). Activations are plain Python values (``None``, ``bool``, ``int``,
``float``, ``str``, ``bytes``, ``list``, ``dict``) and so are results.

Engine differences
------------------
Found by running the same expressions on cel-expr-python 0.1.3 and cel-python 0.5.0. Where the
raw engines differ, this module makes the python engine behave like the native one (*aligned*);
what it cannot align is listed under *remaining*.

Aligned:

* Numbers of different types (int, uint, double) compare by value on native:
  ``request.tokens > 1000.5``, ``request.tokens == 120.0``, ``request.tokens in [120.0]``.
  Raw cel-python fails them with "no such overload".
* Values of different types are unequal on native: ``request.max_tokens == 100`` (when it is
  null), ``request.text == 1`` and ``request.stream == 0`` are false, also element-wise inside
  lists and maps and for ``in``. Raw cel-python fails them.
* Arithmetic mixing int, uint and double is an error on native (``request.tokens * 1.5``,
  ``signals.task.complexity * 10``); raw cel-python computes ``double * int`` (not
  ``int * double``). Convert explicitly: ``double(request.tokens) * 1.5``.
* ``has(a.b.c)`` when ``a.b`` is missing is an error on native and false on raw cel-python
  (whose ``has()`` means "evaluates without error"). ``has()`` of anything but a field selection
  (``has(m["k"])``, ``has(request)``) is a compile error on native; write ``"k" in m``.
* ``size(null)``, indexing a string (``s[0]``) and negative list indexes (``l[-1]``) are errors
  on native; raw cel-python returns 0, a character and the last element.
* Undeclared variables, unknown functions, wrong argument counts for plugin functions, functions
  in the wrong form (``contains(s, "x")`` for ``s.contains("x")``, a plugin function called as a
  method) and cel-python's own ``reduce()``/``min()`` macros are compile errors on native and
  evaluation errors (or values) on raw cel-python.
* ``c ? a : b`` with a failing ``c`` reports ``c``'s error on native, a type error on raw
  cel-python.
* Activation values: native checks each top-level variable against its declared type (``null``
  for a ``map`` variable is an error, an int for a ``double`` variable becomes a double) and
  converts it when an expression first reads it; if anything inside is not ``None``, ``bool``,
  ``int`` within int64, ``float``, ``str``, ``bytes``, ``list`` or ``dict`` (tuples, sets,
  datetimes, larger ints), reading that variable is an error. Other variables are unaffected.
* Results: ``type(x)`` comes back as its name (``"int"``, ``"list"``, ``"null_type"``...),
  timestamps and durations as UTC ``datetime`` and ``timedelta``.

Remaining:

* Native type-checks when compiling. Operands whose type is known before evaluation (literals,
  variables declared ``bool``/``int``/``double``/``string``/``list``/``map``) must have matching
  types, so ``1 < 1.5``, ``1 == null``, ``"a" + 1``, ``c ? 1 : 2.5`` and ``n > 1.5`` (``n``
  declared ``int``) are compile errors on native while python evaluates them (comparisons as
  above, other operators fail when evaluated). Fields of ``map`` and ``dyn`` variables, such as
  ``request.tokens``, are typed only at evaluation, where both engines agree.
  ``portability_warnings()`` flags these expressions.
* Error messages and positions differ. Native gives no position for evaluation errors; python
  gives the start of the failing sub-expression. In compile errors native points at a call's
  ``(`` and python at the function name; at an unexpected end of input native points past the
  end, python at the last token.
* Native also logs an invalid regular expression in ``matches()`` to stderr (RE2 via absl).
* Speed for a 3-clause expression on the reference machine: native about 21 µs from a plain
  dict and 7 µs from a prepared activation (``Environment.prepare``); python about 1.2 ms.

The same on both, for policy authors: a missing map key is an error and ``has()`` tests
presence (true for a key whose value is null); ``null`` supports only ``==`` and ``!=``;
``&&`` and ``||`` absorb an error when the other side decides (``request.nope || true`` is
true); integer ``/`` and ``%`` truncate toward zero, ``x / 0`` and ``x % 0`` are errors,
``1.0 / 0.0`` is infinity, int64 overflow is an error. The string functions are CEL's standard
``contains``, ``startsWith``, ``endsWith``, ``matches`` (RE2, unanchored) and ``size`` (code
points); ``lowerAscii``, ``split``, ``replace``, ``trim`` and the other strings-extension
functions, and the ``.?`` optional syntax, exist on neither.
"""

from __future__ import annotations

import datetime
import functools
import importlib
import inspect
import operator
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

ENGINES = ("native", "python")

_MODULES = {"native": "cel_expr_python.cel", "python": "celpy"}
_DISTRIBUTIONS = {"native": "cel-expr-python", "python": "cel-python"}
_TYPE_NAMES = ("map", "list", "dyn", "bool", "int", "double", "string")


class CelError(Exception):
    """A CEL compile or evaluation failure; line and column are 1-based when known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(where + message)
        self.message = message
        self.line = line
        self.column = column


class CelCompileError(CelError):
    pass


class CelEvalError(CelError):
    pass


@functools.cache
def _module(engine: str) -> Any:
    try:
        return importlib.import_module(_MODULES[engine])
    except ImportError:
        return None


def available_engines() -> tuple[str, ...]:
    return tuple(engine for engine in ENGINES if _module(engine) is not None)


def resolve_engine(choice: str) -> str:
    if choice == "auto":
        # The first that imports: importing cel-python as well would add ~0.1 s to start-up.
        found = next((engine for engine in ENGINES if _module(engine) is not None), None)
        if found is None:
            raise CelError("no CEL engine is installed: install cel-expr-python or cel-python")
        return found
    if choice not in ENGINES:
        raise CelError(f"unknown CEL engine {choice!r}: expected 'auto', 'native' or 'python'")
    if _module(choice) is None:
        raise CelError(
            f"CEL engine {choice!r} is not installed: pip install {_DISTRIBUTIONS[choice]}"
        )
    return choice


class Program(Protocol):
    source: str

    def evaluate(self, activation: Mapping[str, Any]) -> Any: ...


class Prepared(Mapping[str, Any]):
    """An activation converted once for one Environment, to evaluate several programs on.

    It is a snapshot: mutating the wrapped dicts afterwards has an undefined effect.
    """

    def __init__(self, owner: Environment, data: Mapping[str, Any], converted: Any) -> None:
        self._owner = owner
        self._data = data
        self._converted = converted

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class Environment:
    """Declared variables and plugin functions, for compiling expressions on one engine.

    ``variables`` maps each top-level name to a type: map (``map(string, dyn)``), list (of dyn),
    dyn, bool, int, double or string. ``functions`` are global CEL functions that take and
    return plain Python values; their positional parameters give the accepted argument counts
    (``*args`` accepts up to 8). An exception they raise becomes an evaluation error.
    """

    def __init__(
        self,
        engine: str,
        variables: Mapping[str, str],
        functions: Mapping[str, Callable[..., Any]] = {},
    ) -> None:
        if engine not in ENGINES:
            raise CelError(f"unknown CEL engine {engine!r}: expected 'native' or 'python'")
        resolve_engine(engine)
        for name, type_name in variables.items():
            if type_name not in _TYPE_NAMES:
                raise CelError(
                    f"variable {name!r}: unsupported CEL type {type_name!r}, "
                    f"expected one of {', '.join(_TYPE_NAMES)}"
                )
        for name in functions:
            if not name.isidentifier() or name in _RESERVED:
                raise CelError(f"invalid plugin function name {name!r}")
        plugins = {name: (_arities(fn), _guarded(name, fn)) for name, fn in functions.items()}
        self.engine = engine
        self._backend: _NativeBackend | _PythonBackend
        if engine == "native":
            self._backend = _NativeBackend(variables, plugins)
        else:
            self._backend = _PythonBackend(variables, plugins)

    def compile(self, source: str) -> Program:
        return self._backend.compile(self, source)

    def prepare(self, activation: Mapping[str, Any]) -> Prepared:
        """Convert an activation once, to evaluate several of this environment's programs."""
        return Prepared(self, activation, self._backend.convert(activation))


def _arities(fn: Callable[..., Any]) -> tuple[int, ...]:
    """The argument counts a plugin function accepts; *args stands for up to 8 arguments."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature
        return tuple(range(9))
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(1 for p in positional if p.default is p.empty)
    varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
    return tuple(range(required, max(len(positional), 8 if varargs else 0) + 1))


def _guarded(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    # Both engines turn the exception into an evaluation error; this names the function in it.
    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            raise RuntimeError(f"{name}() failed: {type(exc).__name__}: {exc}") from exc

    return call


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_RESERVED = _names(
    "has dyn size type bool bytes double duration int string timestamp uint matches contains "
    "startsWith endsWith all exists exists_one map filter list null_type true false null in"
)


# --- native: cel-expr-python -------------------------------------------------------------------

_NATIVE_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): ([^\n]*)")
_STATUS = re.compile(r"^[A-Z_]+: |\s*\[[A-Z_]+\]$|\s*\(in container ''\)")


def _strip_status(text: str) -> str:
    return _STATUS.sub("", text)


class _NativeBackend:
    def __init__(
        self,
        variables: Mapping[str, str],
        plugins: Mapping[str, tuple[tuple[int, ...], Callable[..., Any]]],
    ) -> None:
        cel = _module("native")
        dyn = cel.Type.DYN
        types = {
            "map": cel.Type.Map(cel.Type.STRING, dyn),
            "list": cel.Type.List(dyn),
            "dyn": dyn,
            "bool": cel.Type.BOOL,
            "int": cel.Type.INT,
            "double": cel.Type.DOUBLE,
            "string": cel.Type.STRING,
        }
        decls = [
            cel.FunctionDecl(
                name, [cel.Overload(f"{name}_{n}", dyn, [dyn] * n, False, fn) for n in arities]
            )
            for name, (arities, fn) in plugins.items()
        ]
        # NewEnv(functions=...) registers DYN parameters so that no runtime call ever matches
        # them; a CelExtension maps DYN to the runtime's wildcard.
        extensions = [cel.CelExtension("sidecar_plugins", decls)] if decls else []
        self._env = cel.NewEnv(
            variables={name: types[t] for name, t in variables.items()}, extensions=extensions
        )
        self._error_type = cel.Type.ERROR

    def compile(self, owner: Environment, source: str) -> Program:
        try:
            expr = self._env.compile(source)
        except RuntimeError as exc:
            found = _NATIVE_ERROR.findall(str(exc))
            if not found:
                raise CelCompileError(_strip_status(str(exc))) from None
            message = "; ".join(_strip_status(m) for _, _, m in found)
            raise CelCompileError(message, int(found[0][0]), int(found[0][1])) from None
        return _NativeProgram(owner, self, source, expr)

    def convert(self, activation: Mapping[str, Any]) -> Any:
        data = activation if type(activation) is dict else dict(activation)
        try:
            return self._env.Activation(data)
        except (RuntimeError, TypeError) as exc:
            raise CelEvalError(f"invalid activation: {exc}") from None


class _NativeProgram:
    def __init__(self, owner: Environment, backend: _NativeBackend, source: str, expr: Any):
        self.source = source
        self._owner = owner
        self._backend = backend
        self._expr = expr

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        try:
            if type(activation) is Prepared and activation._owner is self._owner:
                value = self._expr.eval(activation._converted)
            else:  # eval(data=) is faster than building an Activation for a single use
                data = activation if type(activation) is dict else dict(activation)
                value = self._expr.eval(data=data)
        except (RuntimeError, TypeError) as exc:
            raise CelEvalError(_strip_status(str(exc))) from None
        result = value.plain_value()
        # An error value's plain value is its message, so only strings need the type check.
        if type(result) is str and value.type() == self._backend._error_type:
            raise CelEvalError(_strip_status(result))
        if type(result) in (bool, int, float, str) or result is None:
            return result
        return _native_plain(result)


def _native_plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_native_plain(item) for item in value]
    if isinstance(value, dict):
        return {_native_plain(k): _native_plain(v) for k, v in value.items()}
    if isinstance(value, bytearray):
        return bytes(value)
    if hasattr(value, "is_message"):  # a cel.Type, from type(x): "list<dyn>" becomes "list"
        name = str(value).lower().partition("<")[0]
        return "null_type" if name == "null" else name
    return value


# --- python: cel-python -------------------------------------------------------------------------

# What the native engine accepts; the python engine is held to the same names when compiling.
_GLOBAL_FUNCTIONS = _names(
    "has dyn size type bool bytes double duration int string timestamp uint matches"
)
_MACROS = _names("all exists exists_one map filter")
_MEMBER_FUNCTIONS = _MACROS | _names(
    "contains startsWith endsWith matches size getDate getDayOfMonth getDayOfWeek getDayOfYear "
    "getFullYear getMonth getHours getMilliseconds getMinutes getSeconds"
)
_PYTHON_TYPES = {
    "map": dict,
    "list": list,
    "bool": bool,
    "int": int,
    "double": float,
    "string": str,
}
_TYPE_IDENTS = _names("bool bytes double int list map null_type string type uint")
_RULE_OPERATORS = {
    "relation_lt": "<",
    "relation_le": "<=",
    "relation_gt": ">",
    "relation_ge": ">=",
    "relation_eq": "==",
    "relation_ne": "!=",
    "addition_add": "+",
    "addition_sub": "-",
    "multiplication_mul": "*",
    "multiplication_div": "/",
    "multiplication_mod": "%",
    "unary_not": "!",
    "unary_neg": "-",
}
_CELPY_NOISE = re.compile(
    r" \(in (?:activation|container) .*$|Token\('RULE', '(\w+)'\)|'(\w+_\w+)'"
    r"|<class '(?:celpy\.celtypes\.)?(\w+?)(?:Type)?'>",
    re.DOTALL,
)


def _fits(declared: str, value: Any) -> bool:
    if type(value) is bool:
        return declared == "bool"
    return isinstance(value, _PYTHON_TYPES[declared])


def _unwrap(node: Any) -> Any:
    """The single node under a chain of one-child parse-tree nodes."""
    while getattr(node, "children", None) is not None and len(node.children) == 1:
        node = node.children[0]
    return node


def _clean_celpy_message(message: str) -> str:
    def replace(m: re.Match[str]) -> str:
        if m.group(1) or m.group(2):
            rule = m.group(1) or m.group(2)
            return f"'_{_RULE_OPERATORS[rule]}_'" if rule in _RULE_OPERATORS else m.group(0)
        if m.group(3):
            return {"None": "null_type", "Double": "double"}.get(m.group(3), m.group(3).lower())
        return ""

    return _CELPY_NOISE.sub(replace, message)


@functools.cache
def _celpy_runner(celpy: Any) -> Any:
    base, boolean, error = celpy.Evaluator, celpy.celtypes.BoolType, celpy.CELEvalError

    class Evaluator(base):  # type: ignore[misc, valid-type]
        # cel-python's has() is true whenever its argument evaluates; CEL's (and native's)
        # errors when the object does not evaluate and tests only the last field.
        def macro_has_eval(self, exprlist: Any) -> Any:
            select = _unwrap(exprlist)
            target = self.visit(select.children[0])
            if isinstance(target, error):
                return target
            if isinstance(target, dict):
                return boolean(select.children[1] in target)
            kind = type(target).__name__.removesuffix("Type").lower()
            return error(f"has() does not apply to {kind}")

        def sub_evaluator(self, ast: Any) -> Any:
            return Evaluator(ast, activation=self.activation)

    class Runner(celpy.InterpretedRunner):  # type: ignore[misc]
        def evaluate(self, context: Any) -> Any:
            return Evaluator(ast=self.ast, activation=self.new_activation()).evaluate(context)

    return Runner


class _PythonBackend:
    def __init__(
        self,
        variables: Mapping[str, str],
        plugins: Mapping[str, tuple[tuple[int, ...], Callable[..., Any]]],
    ) -> None:
        celpy = _module("python")
        self._celpy = celpy
        self._t = celpy.celtypes
        limit = sys.getrecursionlimit()
        self._env = celpy.Environment(runner_class=_celpy_runner(celpy))
        # celpy.Environment() sets the limit to 2500; never lower what the process chose.
        sys.setrecursionlimit(max(limit, sys.getrecursionlimit()))
        self._variables = dict(variables)
        self._arities = {name: arities for name, (arities, _) in plugins.items()}
        self._functions = self._spec_operators()
        self._functions.update((name, self._plugin(name, fn)) for name, (_, fn) in plugins.items())

    def compile(self, owner: Environment, source: str) -> Program:
        try:
            ast = self._env.compile(source)
        except self._celpy.CELParseError as exc:
            raise CelCompileError(_parse_message(exc), exc.line, exc.column) from None
        self._check(ast)
        runner = self._env.program(ast, functions=self._functions)
        return _PythonProgram(owner, self, source, runner)

    def _check(self, ast: Any) -> None:
        """Reject at compile time what the native engine's type checker rejects by name."""
        bound = set()  # variables introduced by macros such as exists(x, ...)
        for node in ast.iter_subtrees():
            if node.data == "member_dot_arg" and node.children[1] in _MACROS and node.children[2:]:
                bound.add(_unwrap(node.children[2].children[0]))
        known = self._variables.keys() | _TYPE_IDENTS | bound
        errors: list[tuple[Any, str]] = []
        for node in ast.iter_subtrees():
            name = node.children[0] if node.children else None
            if node.data in ("ident", "dot_ident") and name not in known:
                errors.append((name, f"undeclared reference to '{name}'"))
            elif node.data in ("ident_arg", "dot_ident_arg"):
                args = node.children[1].children if len(node.children) > 1 else []
                if name in self._arities:
                    if len(args) not in self._arities[name]:
                        message = f"wrong number of arguments for '{name}': {len(args)}"
                        errors.append((name, message))
                elif name not in _GLOBAL_FUNCTIONS:
                    errors.append((name, f"undeclared reference to '{name}'"))
                elif name == "has" and (
                    len(args) != 1 or getattr(_unwrap(args[0]), "data", None) != "member_dot"
                ):
                    errors.append((name, "has() argument must be a field selection"))
            elif node.data == "member_dot_arg" and node.children[1] not in _MEMBER_FUNCTIONS:
                errors.append((node.children[1], f"undeclared reference to '{node.children[1]}'"))
        if errors:
            errors.sort(key=lambda e: (e[0].line, e[0].column))
            token = errors[0][0]
            raise CelCompileError("; ".join(m for _, m in errors), token.line, token.column)

    def convert(self, activation: Mapping[str, Any]) -> dict[str, Any]:
        converted = {}
        for name, value in activation.items():
            declared = self._variables.get(name, "dyn")
            try:
                if declared == "double" and type(value) is int:
                    value = float(value)  # as native does
                elif declared != "dyn" and not _fits(declared, value):
                    raise TypeError(f"expected {declared}, got {type(value).__name__}")
                converted[name] = self._to_cel(value)
            except (TypeError, ValueError) as exc:
                # Like native: only expressions that read this variable fail.
                converted[name] = self._celpy.CELEvalError(f"invalid value for '{name}': {exc}")
        return converted

    def _to_cel(self, value: Any) -> Any:
        t = self._t
        if isinstance(value, str):
            return t.StringType(value)
        if isinstance(value, bool):
            return t.BoolType(value)
        if isinstance(value, int):
            return t.IntType(value)  # ValueError outside int64
        if isinstance(value, float):
            return t.DoubleType(value)
        if value is None:
            return None
        if isinstance(value, dict):
            return t.MapType({self._to_cel(k): self._to_cel(v) for k, v in value.items()})
        if isinstance(value, list):
            return t.ListType([self._to_cel(item) for item in value])
        if isinstance(value, bytes):
            return t.BytesType(value)
        raise TypeError(f"unsupported value type {type(value).__name__}")

    def to_plain(self, value: Any) -> Any:
        t = self._t
        if isinstance(value, (bool, t.BoolType)):
            return bool(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, str):
            return str(value)
        if isinstance(value, bytes):
            return bytes(value)
        if isinstance(value, list):
            return [self.to_plain(item) for item in value]
        if isinstance(value, dict):
            return {self.to_plain(k): self.to_plain(v) for k, v in value.items()}
        if isinstance(value, self._celpy.CELEvalError):
            raise _python_eval_error(value)
        if isinstance(value, type):  # the result of type(x)
            name = value.__name__.removesuffix("Type").lower()
            return "null_type" if name == "none" else name
        if isinstance(value, datetime.datetime):
            return datetime.datetime.fromtimestamp(value.timestamp(), datetime.UTC)
        if isinstance(value, datetime.timedelta):
            return datetime.timedelta(value.days, value.seconds, value.microseconds)
        return value

    def _plugin(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            try:
                result = fn(*(self.to_plain(a) for a in args))
            except Exception as exc:
                return self._celpy.CELEvalError(str(exc))
            try:
                return self._to_cel(result)
            except (TypeError, ValueError) as exc:
                return self._celpy.CELEvalError(f"{name}() returned an unsupported value: {exc}")

        return call

    def _spec_operators(self) -> dict[str, Callable[..., Any]]:
        # cel-python lets functions override its operators: give them the CEL-spec semantics
        # of the native engine (cross-type numeric comparison, heterogeneous equality, no
        # mixed int/double arithmetic, no string or negative indexing, size(null) fails).
        t, evaluation, error = self._t, self._celpy.evaluation, self._celpy.CELEvalError

        def kind(v: Any) -> str | None:
            if isinstance(v, (bool, t.BoolType)) or not isinstance(v, (int, float)):
                return None
            return (
                "double" if isinstance(v, float) else "uint" if isinstance(v, t.UintType) else "int"
            )

        def number(v: Any) -> int | float:
            return float(v) if isinstance(v, float) else int(v)

        def equal(a: Any, b: Any) -> bool:
            if kind(a) and kind(b):
                return number(a) == number(b)
            if isinstance(a, list) and isinstance(b, list):
                return len(a) == len(b) and all(map(equal, a, b))
            if isinstance(a, dict) and isinstance(b, dict):
                return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
            return type(a) is type(b) and bool(a == b)

        def strict(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
            def call(a: Any, b: Any) -> Any:
                if isinstance(a, error):
                    return a
                if isinstance(b, error):
                    return b
                return fn(a, b)

            return call

        def ordering(op: Callable[[Any, Any], bool], fallback: Any) -> Callable[[Any, Any], Any]:
            def call(a: Any, b: Any) -> Any:
                if kind(a) and kind(b):
                    return t.BoolType(op(number(a), number(b)))
                return fallback(a, b)

            return strict(call)

        def arithmetic(op: Callable[[Any, Any], Any], name: str) -> Callable[[Any, Any], Any]:
            def call(a: Any, b: Any) -> Any:
                if kind(a) and kind(b) and kind(a) != kind(b):
                    raise TypeError(f"no such overload: {kind(a)} {name} {kind(b)}")
                return op(a, b)

            return strict(call)

        def contained(item: Any, container: Any) -> Any:
            if isinstance(container, dict):
                return t.BoolType(item in container)
            if isinstance(container, list):
                return t.BoolType(any(equal(item, x) for x in container))
            raise TypeError(f"no such overload: in {type(container).__name__}")

        def index(container: Any, key: Any) -> Any:
            if isinstance(container, list):
                if kind(key) != "int" or not 0 <= int(key) < len(container):
                    raise IndexError(f"index {key} out of range for a list of {len(container)}")
                return container[int(key)]
            if isinstance(container, dict):
                return container[key]
            raise TypeError(f"no such overload: {type(container).__name__}[{type(key).__name__}]")

        def size(value: Any) -> Any:
            if value is None:
                raise TypeError("no such overload: size(null)")
            return evaluation.function_size(value)

        return {
            "_<_": ordering(operator.lt, evaluation.bool_lt),
            "_<=_": ordering(operator.le, evaluation.bool_le),
            "_>_": ordering(operator.gt, evaluation.bool_gt),
            "_>=_": ordering(operator.ge, evaluation.bool_ge),
            "_==_": strict(lambda a, b: t.BoolType(equal(a, b))),
            "_!=_": strict(lambda a, b: t.BoolType(not equal(a, b))),
            "_in_": strict(contained),
            "_+_": arithmetic(operator.add, "+"),
            "_-_": arithmetic(operator.sub, "-"),
            "_*_": arithmetic(operator.mul, "*"),
            "_/_": arithmetic(operator.truediv, "/"),
            "_%_": arithmetic(operator.mod, "%"),
            "_[_]": strict(index),
            "_?_:_": lambda c, a, b: c if isinstance(c, error) else t.logical_condition(c, a, b),
            "size": size,
        }


def _parse_message(exc: Any) -> str:
    cause = exc.__context__
    token = getattr(cause, "token", None)
    if token is not None:
        what = "end of expression" if token.type == "$END" else repr(str(token))
    elif getattr(cause, "char", None):
        what = repr(cause.char)
    else:
        what = "input"
    return f"syntax error: unexpected {what}"


def _python_eval_error(exc: Any) -> CelEvalError:
    message = str(exc.args[0]) if exc.args else "evaluation error"
    if len(exc.args) > 2 and exc.args[2] and message in ("no such overload", "invalid_argument"):
        message = str(exc.args[2][0])  # the underlying Python exception's message
    # all() and exists() wrap the errors of their elements in nested TypeErrors.
    nested = re.findall(r"CELEvalError\(\*\((['\"])((?:(?!\1)[^\\]|\\.)*)\1", message)
    message = next((m for _, m in nested if m != "no such overload"), message)
    return CelEvalError(_clean_celpy_message(message), exc.line, exc.column)


class _PythonProgram:
    def __init__(self, owner: Environment, backend: _PythonBackend, source: str, runner: Any):
        self.source = source
        self._owner = owner
        self._backend = backend
        self._runner = runner

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        if type(activation) is Prepared and activation._owner is self._owner:
            converted = activation._converted
        else:
            converted = self._backend.convert(activation)
        try:
            result = self._runner.evaluate(converted)
        except self._backend._celpy.CELEvalError as exc:
            raise _python_eval_error(exc) from None
        except Exception as exc:  # cel-python raises plain Python errors on some bad input
            raise CelEvalError(f"{type(exc).__name__}: {exc}") from None
        return self._backend.to_plain(result)


# --- portability --------------------------------------------------------------------------------

_LEX = re.compile(
    r"""(?P<space>\s+|//[^\n]*)
    |(?P<string>[bBrR]{0,2}(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))
    |(?P<number>0[xX][0-9a-fA-F]+[uU]?|\d*\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+[uU]?)
    |(?P<ident>[_a-zA-Z][_a-zA-Z0-9]*)
    |(?P<op><=|>=|==|!=|&&|\|\||.)""",
    re.VERBOSE,
)
# Binding strength of what may sit next to an operand; anything unlisted binds tighter.
_PRECEDENCE = {"*": 5, "/": 5, "%": 5, "+": 4, "-": 4, "<": 3, "<=": 3, ">": 3, ">=": 3}
_PRECEDENCE |= {"==": 3, "!=": 3, "in": 3, "&&": 2, "||": 1, "?": 0, ":": 0}
_PRECEDENCE |= dict.fromkeys(["(", "[", "{", ",", ")", "]", "}", ""], -1)
_BINARY = _names("* / % + - < <= > >= == !=")
_BEFORE_UNARY = frozenset(["", "(", "[", "{", ",", "?", ":", "&&", "||", "!", "in"])


def _static_type(group: str, text: str, variables: Mapping[str, str]) -> str | None:
    if group == "number":
        if text[-1] in "uU":
            return "uint"
        return "double" if text[:2] not in ("0x", "0X") and set(text) & set(".eE") else "int"
    if group == "string":
        return "bytes" if "b" in text[: text.index(text[-1])].lower() else "string"
    if group == "ident":
        literal = {"true": "bool", "false": "bool", "null": "null_type"}.get(text)
        declared = variables.get(text, "dyn")
        return literal or (None if declared == "dyn" else declared)
    return None


def portability_warnings(
    source: str,
    variables: Mapping[str, str] = {},
) -> list[str]:
    """Warn about what the native engine rejects when compiling but the python one evaluates.

    Through this module both engines evaluate alike; what remains is native's static type check
    of operands whose type is known before evaluation: literals, and variables declared with a
    type other than ``dyn`` (pass ``variables`` as given to Environment). A syntactic heuristic:
    it looks at operators and ``?:`` whose operands are a single literal or variable, such as
    ``1 < 1.5``, ``c ? 1 : "x"`` or, with ``variables={"n": "int"}``, ``n > 1000.5``.
    """
    tokens: list[tuple[str | None, str, int]] = []  # (static type, text, 1-based column)
    for m in _LEX.finditer(source):
        group, text = m.lastgroup or "op", m.group()
        static = _static_type(group, text, variables)
        if group == "space":
            continue
        if (
            static in ("int", "double")
            and tokens
            and tokens[-1][1] == "-"
            and tokens[-1][0] is None
        ):
            before = tokens[-2][1] if len(tokens) > 1 else ""
            if before in _BINARY or before in _BEFORE_UNARY:
                tokens[-1] = (static, "-" + text, tokens[-1][2])  # a negative literal
                continue
        tokens.append((static, text, m.start() + 1))
    tokens = [(None, "", 0), *tokens, (None, "", len(source) + 1)]

    def strength(i: int) -> int:
        if i >= len(tokens):
            return -1
        return _PRECEDENCE.get(tokens[i][1], 9) if tokens[i][0] is None else 9

    warnings = []
    for i in range(1, len(tokens) - 1):
        static, op, column = tokens[i]
        if static is not None:
            continue
        if op in _BINARY:
            (left, left_text, _), (right, right_text, _) = tokens[i - 1], tokens[i + 1]
            level = _PRECEDENCE[op]
            isolated = strength(i - 2) < level and strength(i + 2) <= level
        elif op == "?" and i + 3 < len(tokens) and tokens[i + 2][1] == ":":
            (left, left_text, _), (right, right_text, _) = tokens[i + 1], tokens[i + 3]
            isolated = strength(i + 4) < 0
        else:
            continue
        if left and right and left != right and isolated:
            shown = (
                f"{left_text} {op} {right_text}" if op != "?" else f"? {left_text} : {right_text}"
            )
            warnings.append(
                f"column {column}: `{shown}` mixes {left} and {right}: the native engine rejects "
                "this when compiling, the python engine evaluates it"
            )
    return warnings
