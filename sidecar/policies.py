"""Policy files -> an immutable PolicySet: parse all, compile all, dry-run all, or fail.

One policy per YAML file, applied in file-name order; the first whose `when` is true
decides. Every problem is reported with its file, line and column, and a set with any
problem is never used: the caller keeps serving the last good set.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import cel
from .activation import REQUEST_FIELDS
from .errors import SidecarError
from .settings import Settings, compose

POLICY_KEYS = ("description", "when", "route", "fallback", "confidential", "enabled")
ROUTE_KEYS = ("tier", "model", "requested")

CHUNK = 12
"""Policies evaluated by one CEL program: cel-cpp's parser allows 32 levels of nesting, and
each policy in the chain adds one to whatever its own `when` uses."""

_REFERENCE = re.compile(r"\b(request|signals)\.([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?")


@dataclass(frozen=True)
class PolicyProblem:
    file: str
    line: int | None
    column: int | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


class PolicyError(SidecarError):
    """A policy directory that cannot be used; `problems` lists every problem found."""

    def __init__(self, problems: list[PolicyProblem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"{len(problems)} policy error(s):\n{lines}")


@dataclass(frozen=True)
class Route:
    tier: str | None = None
    model: str | None = None
    requested: bool = False
    """Serve the tier or model the client named in `model` (the default tier for `auto`)."""

    def __str__(self) -> str:
        if self.requested:
            return "requested model"
        return f"tier {self.tier}" if self.tier else f"model {self.model}"


@dataclass(frozen=True)
class Policy:
    name: str
    """The file name without its extension, e.g. `10-sensitive`."""
    file: str
    when: str
    route: Route
    description: str = ""
    fallback: tuple[str, ...] = ()
    confidential: bool = False
    enabled: bool = True
    program: cel.Program | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of evaluating a policy set for one request."""

    policy: Policy | None
    """The policy that decided, None if none matched."""
    errors: tuple[tuple[str, str], ...] = ()
    """(policy name, error) for every policy whose `when` failed to evaluate."""
    failed_closed: bool = False
    """The deciding policy is confidential and its `when` failed: it was applied anyway."""


@dataclass(frozen=True)
class PolicySet:
    """A loaded, checked, immutable set of policies; requests capture one and keep it."""

    policies: tuple[Policy, ...]
    version: str
    """A hash of the files' names and contents."""
    loaded_at: float
    environment: cel.Environment = field(repr=False, compare=False)
    warnings: tuple[str, ...] = ()
    active: tuple[Policy, ...] = field(init=False, repr=False, compare=False)
    chunks: tuple[tuple[int, cel.Program | None], ...] = field(
        init=False, repr=False, compare=False
    )
    """(index of the first policy, one program for CHUNK policies or None) in order."""

    def __post_init__(self) -> None:
        active = tuple(p for p in self.policies if p.enabled and p.program is not None)
        chunks = tuple(
            (start, _combine(self.environment, active[start : start + CHUNK]))
            for start in range(0, len(active), CHUNK)
        )
        object.__setattr__(self, "active", active)
        object.__setattr__(self, "chunks", chunks)

    @property
    def engine(self) -> str:
        return self.environment.engine

    def first_match(self, activation: Mapping[str, Any]) -> Verdict:
        """The first enabled policy whose `when` is true.

        One CEL program evaluates a run of up to CHUNK policies (one engine call instead of
        one per policy). If any `when` in it fails, those policies are evaluated one by one:
        a failing policy counts as not matching, except a confidential one, which fails
        closed.
        """
        # Converting the activation for the engine once pays when several programs read
        # it (more than CHUNK policies, or a failure to isolate). A lone program reads it
        # as it is: with cel-expr-python ~5 µs less than converting it first.
        prepared: Mapping[str, Any] = activation
        if len(self.chunks) > 1:
            prepared = self.environment.prepare(activation)
        errors: list[tuple[str, str]] = []
        for start, program in self.chunks:
            if program is not None:
                try:
                    index = program.evaluate(prepared)
                except cel.CelEvalError:
                    pass
                else:
                    if index >= 0:
                        return Verdict(self.active[start + index], tuple(errors))
                    continue
            if prepared is activation:  # its policies one by one: several programs
                prepared = self.environment.prepare(activation)
            for policy in self.active[start : start + CHUNK]:
                assert policy.program is not None
                try:
                    matched = policy.program.evaluate(prepared)
                except cel.CelEvalError as exc:
                    errors.append((policy.name, exc.message))
                    if policy.confidential:
                        return Verdict(policy, tuple(errors), failed_closed=True)
                    continue
                if matched is True:
                    return Verdict(policy, tuple(errors))
        return Verdict(None, tuple(errors))

    def explain(self, activation: Mapping[str, Any]) -> list[tuple[Policy, bool | str | None]]:
        """Every policy with its result: True/False, an error message, or None if disabled."""
        prepared = self.environment.prepare(activation)
        results: list[tuple[Policy, bool | str | None]] = []
        for policy in self.policies:
            if not policy.enabled or policy.program is None:
                results.append((policy, None))
                continue
            try:
                results.append((policy, policy.program.evaluate(prepared) is True))
            except cel.CelEvalError as exc:
                results.append((policy, f"error: {exc.message}"))
        return results


def _combine(environment: cel.Environment, policies: tuple[Policy, ...]) -> cel.Program | None:
    """`(p0) ? 0 : (p1) ? 1 : ... : -1`, or None if the engine will not take it (the
    expression's nesting counts against the parser's recursion limit)."""
    # Newlines keep a `//` comment at the end of a `when` from swallowing the rest.
    source = "".join(f"(\n{p.when}\n) ? {i} :\n" for i, p in enumerate(policies)) + "-1"
    try:
        return environment.compile(source)
    except cel.CelError:
        return None


@dataclass(frozen=True)
class PolicyFile:
    name: str
    text: str


def read_directory(directory: Path) -> list[PolicyFile]:
    """The policy files of a directory in name order (hidden files, e.g. `..data`, skipped)."""
    if not directory.is_dir():
        raise PolicyError(
            [PolicyProblem(str(directory), None, None, "policy directory does not exist")]
        )
    files = []
    for path in sorted(directory.iterdir(), key=lambda p: p.name):
        if path.name.startswith(".") or path.suffix not in (".yaml", ".yml"):
            continue
        if not path.is_file():
            continue
        try:
            files.append(PolicyFile(path.name, path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(
                [PolicyProblem(path.name, None, None, f"cannot read: {exc}")]
            ) from None
    return files


def version_of(files: Iterable[PolicyFile]) -> str:
    digest = hashlib.sha256()
    for policy_file in files:
        digest.update(policy_file.name.encode() + b"\0" + policy_file.text.encode() + b"\0")
    return digest.hexdigest()[:16]


def build_policy_set(
    files: list[PolicyFile],
    settings: Settings,
    environment: cel.Environment,
    samples: list[Mapping[str, Any]],
    signal_outputs: Mapping[str, Mapping[str, str]],
) -> PolicySet:
    """Parse, compile and dry-run every file; raise PolicyError listing every problem."""
    problems: list[PolicyProblem] = []
    warnings: list[str] = []
    policies = []
    for policy_file in sorted(files, key=lambda f: f.name):
        loader = _FileLoader(policy_file, settings, environment, signal_outputs)
        policy = loader.load()
        problems.extend(loader.problems)
        warnings.extend(loader.warnings)
        if policy is not None and policy.program is not None:
            problems.extend(_dry_run(policy, loader.when_position, samples))
            policies.append(policy)
    if problems:
        raise PolicyError(problems)
    return PolicySet(tuple(policies), version_of(files), time.time(), environment, tuple(warnings))


def _dry_run(
    policy: Policy, position: tuple[int, int], samples: list[Mapping[str, Any]]
) -> list[PolicyProblem]:
    assert policy.program is not None
    for sample in samples:
        try:
            result = policy.program.evaluate(sample)
        except cel.CelEvalError as exc:
            message = f"`when` failed on a sample request: {exc.message}"
            if "no such key" in exc.message or "not found in map" in exc.message:
                message += ' (test a map key with `"key" in map` before reading it)'
            return [PolicyProblem(policy.file, position[0], position[1], message)]
        if not isinstance(result, bool):
            message = f"`when` must be a bool expression, it returned {type(result).__name__}"
            return [PolicyProblem(policy.file, position[0], position[1], message)]
    return []


class _FileLoader:
    def __init__(
        self,
        policy_file: PolicyFile,
        settings: Settings,
        environment: cel.Environment,
        signal_outputs: Mapping[str, Mapping[str, str]],
    ) -> None:
        self.file = policy_file
        self.settings = settings
        self.environment = environment
        self.signal_outputs = signal_outputs
        self.problems: list[PolicyProblem] = []
        self.warnings: list[str] = []
        self.when_position = (1, 1)

    def problem(
        self, node: yaml.Node | None, message: str, offset: tuple[int, int] = (0, 0)
    ) -> None:
        if node is None:
            self.problems.append(PolicyProblem(self.file.name, None, None, message))
            return
        mark = node.start_mark
        line = mark.line + 1 + offset[0]
        column = (mark.column + 1 if not offset[0] else 1) + offset[1]
        self.problems.append(PolicyProblem(self.file.name, line, column, message))

    def load(self) -> Policy | None:
        try:
            root = compose(self.file.text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc)
            line = mark.line + 1 if mark else None
            column = mark.column + 1 if mark else None
            self.problems.append(
                PolicyProblem(self.file.name, line, column, f"invalid YAML: {problem}")
            )
            return None
        if not isinstance(root, yaml.MappingNode):
            self.problem(root, "a policy file must be a YAML mapping with `when` and `route`")
            return None
        nodes = self.mapping(root)
        for key, (key_node, _) in nodes.items():
            if key not in POLICY_KEYS:
                self.problem(
                    key_node, f"unknown key {key!r} (expected one of: {', '.join(POLICY_KEYS)})"
                )
        when = self.when(nodes.get("when"), root)
        route = self.route(nodes.get("route"), root)
        fallback = self.fallback(nodes.get("fallback"))
        confidential = self.boolean(nodes.get("confidential"), False)
        enabled = self.boolean(nodes.get("enabled"), True)
        description = self.string(nodes.get("description"), "")
        if when is None or route is None:
            return None
        source, program = when
        name = self.file.name.rsplit(".", 1)[0]
        return Policy(
            name,
            self.file.name,
            source,
            route,
            description,
            fallback,
            confidential,
            enabled,
            program,
        )

    def mapping(self, node: yaml.MappingNode) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        result = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in result:
                self.problem(key_node, f"duplicate key {key!r}")
            result[key] = (key_node, value_node)
        return result

    def when(
        self, entry: tuple[yaml.Node, yaml.Node] | None, root: yaml.Node
    ) -> tuple[str, cel.Program | None] | None:
        if entry is None:
            self.problem(root, "missing required key `when` (a CEL expression returning a bool)")
            return None
        _, node = entry
        if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
            self.problem(node, "`when` must be a CEL expression (a string)")
            return None
        source = str(node.value)
        # Where the expression's first character sits in the file, for CEL error positions.
        quoted = 1 if node.style in ("'", '"') else 0
        self.when_position = (node.start_mark.line + 1, node.start_mark.column + 1 + quoted)
        self.check_references(source, node, quoted)
        for warning in cel.portability_warnings(source):
            self.warnings.append(f"{self.file.name}:{self.when_position[0]}: {warning}")
        try:
            return source, self.environment.compile(source)
        except cel.CelCompileError as exc:
            line, column = self.expression_position(node, quoted, exc.line, exc.column)
            self.problems.append(
                PolicyProblem(self.file.name, line, column, f"invalid CEL: {exc.message}")
            )
            return source, None

    def expression_position(
        self, node: yaml.ScalarNode, quoted: int, line: int | None, column: int | None
    ) -> tuple[int, int]:
        start_line, start_column = node.start_mark.line + 1, node.start_mark.column + 1 + quoted
        if line is None or column is None:
            return start_line, start_column
        if node.style in ("|", ">"):  # a block scalar starts on the next line
            return node.start_mark.line + 1 + line, column + _indent(self.file.text, node)
        if line == 1:
            return start_line, start_column + column - 1
        return start_line + line - 1, column

    def check_references(self, source: str, node: yaml.Node, quoted: int) -> None:
        """Catch a misspelt field or signal when loading, not at request time."""
        for match in _REFERENCE.finditer(source):
            root, name, field_name = match.group(1), match.group(2), match.group(3)
            offset = (0, match.start() + quoted)
            if root == "request" and name not in REQUEST_FIELDS:
                known = ", ".join(REQUEST_FIELDS)
                self.problem(node, f"unknown request field {name!r} (known: {known})", offset)
            elif root == "signals":
                outputs = self.signal_outputs.get(name)
                if outputs is None:
                    known = ", ".join(sorted(self.signal_outputs)) or "none"
                    self.problem(
                        node, f"unknown classifier {name!r} in signals (known: {known})", offset
                    )
                elif field_name is not None and field_name not in outputs:
                    known = ", ".join(outputs)
                    self.problem(
                        node,
                        f"classifier {name!r} has no output {field_name!r} (it has: {known})",
                        offset,
                    )

    def route(self, entry: tuple[yaml.Node, yaml.Node] | None, root: yaml.Node) -> Route | None:
        if entry is None:
            self.problem(root, "missing required key `route` ({tier: NAME} or {model: ID})")
            return None
        _, node = entry
        if not isinstance(node, yaml.MappingNode):
            self.problem(
                node, "`route` must be a mapping: {tier: NAME}, {model: ID} or {requested: true}"
            )
            return None
        nodes = self.mapping(node)
        for key, (key_node, _) in nodes.items():
            if key not in ROUTE_KEYS:
                self.problem(
                    key_node, f"unknown route key {key!r} (expected tier, model or requested)"
                )
        given = [key for key in ROUTE_KEYS if key in nodes]
        if len(given) != 1:
            self.problem(node, "`route` needs exactly one of: tier, model, requested")
            return None
        key = given[0]
        value_node = nodes[key][1]
        value = (
            yaml.safe_load(yaml.serialize(value_node))
            if isinstance(value_node, yaml.ScalarNode)
            else None
        )
        if key == "requested":
            if value is not True:
                self.problem(value_node, "`requested` must be true")
                return None
            return Route(requested=True)
        if not isinstance(value, str):
            self.problem(value_node, f"`route.{key}` must be a name")
            return None
        known = self.settings.tiers if key == "tier" else self.settings.models
        if value not in known:
            self.problem(value_node, f"unknown {key} {value!r} (known: {', '.join(known)})")
            return None
        return Route(tier=value) if key == "tier" else Route(model=value)

    def fallback(self, entry: tuple[yaml.Node, yaml.Node] | None) -> tuple[str, ...]:
        if entry is None:
            return ()
        _, node = entry
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, "`fallback` must be a list of tier names")
            return ()
        tiers = []
        for item in node.value:
            name = item.value if isinstance(item, yaml.ScalarNode) else None
            if name not in self.settings.tiers:
                known = ", ".join(self.settings.tiers)
                self.problem(item, f"unknown tier {name!r} in fallback (known: {known})")
                continue
            tiers.append(str(name))
        return tuple(tiers)

    def boolean(self, entry: tuple[yaml.Node, yaml.Node] | None, default: bool) -> bool:
        if entry is None:
            return default
        key_node, node = entry
        value = yaml.safe_load(yaml.serialize(node)) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(value, bool):
            self.problem(node, f"`{key_node.value}` must be true or false")
            return default
        return value

    def string(self, entry: tuple[yaml.Node, yaml.Node] | None, default: str) -> str:
        if entry is None:
            return default
        key_node, node = entry
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, f"`{key_node.value}` must be text")
            return default
        return str(node.value)


def _indent(text: str, node: yaml.Node) -> int:
    """The indentation of a block scalar's first content line."""
    lines = text.splitlines()
    index = node.start_mark.line + 1
    if index < len(lines):
        line = lines[index]
        return len(line) - len(line.lstrip(" "))
    return 0
