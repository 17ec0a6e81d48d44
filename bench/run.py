"""Benchmark the sidecar against a bare pass-through proxy, in the same run.

    .venv/bin/python bench/run.py            # full run, about 7 minutes on 2 cores
    .venv/bin/python bench/run.py --quick    # CI smoke run: every request must succeed

Needs `nginx` and `wrk` (Debian: `apt-get install -y nginx wrk`; `--delay-ms` also needs
`libnginx-mod-http-echo`) and the `rotel` package (the test extras). nginx serves the
OpenAI fixtures as a fake upstream; wrk loads the upstream directly, bench/passthrough.py
in front of it, and the sidecar in front of it (configured by bench/sidecar.yaml) twice:
as it ships, exporting telemetry over OTLP to a real receiver (rotel's collector) and
writing its usage ledger, and with telemetry off. Each proxy runs pinned to core 1; wrk,
nginx, the receiver and this script to core 0. Plain and streamed requests are measured in
two phases; each phase starts its own proxies, pointed at the upstream path that answers
that way.

Prints one table per phase: absolute figures, the ratio sidecar / pass-through and the
ratio telemetry on / off. Exits 1 if any request failed (non-2xx, socket error, timeout,
malformed answer) or telemetry did not reach the receiver, 2 if a tool (or the echo
module) is missing; it never fails on a time. See bench/README.md for what each figure
means.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
FIXTURES = REPO.parent / "shared" / "spec" / "fixtures" / "openai"
CHAT_PATH = "/v1/chat/completions"
PHASES = {"plain": "chat_completion.json", "stream": "chat_completion_stream.sse"}
TARGETS = ("upstream", "pass-through", "sidecar", "sidecar-telemetry-off")
PROXIES = TARGETS[1:]
# Lines an OTLP exporter logs when spans or metrics did not reach the receiver.
EXPORT_FAILED = ("Failed to export", "Transient error", "Exception while exporting")
EXPORT_DROPPED = "Queue full, dropping"
DISTURBED_PCT = 5  # a proxy's run is disturbed when other processes take this much of its core
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Plan:
    concurrencies: tuple[int, ...]
    latency_at: tuple[int, ...]
    seconds: int
    reps: int
    warmup: bool
    startups: int
    first_tokens: int
    settle: float  # seconds between the first answer and reading the idle RSS
    retries: int  # times a wrk run is repeated while another process takes its core
    reloads: int  # policy files saved under load, each timed until its route is in force


FULL = Plan(
    concurrencies=(1, 8, 32, 128),
    latency_at=(1, 32),
    seconds=5,
    reps=3,
    warmup=True,
    startups=3,
    first_tokens=200,
    settle=1,
    retries=2,
    reloads=10,
)
QUICK = Plan(
    concurrencies=(8,),
    latency_at=(8,),
    seconds=1,
    reps=1,
    warmup=False,
    startups=1,
    first_tokens=20,
    settle=0,
    retries=0,
    reloads=2,
)


# ---------------------------------------------------------------------------- processes


def pinned(core: str | None, command: list[str]) -> list[str]:
    return ["taskset", "-c", core, *command] if core is not None else command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from `state` on


@dataclass
class Server:
    """A process we started; `cpu_pids` are the processes doing its work."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    cpu_pids: list[int] = field(default_factory=list)

    def cpu_seconds(self) -> float:
        ticks = 0
        for pid in self.cpu_pids or [self.proc.pid]:
            fields = proc_stat(pid)
            ticks += int(fields[11]) + int(fields[12])  # utime + stime, all threads
        return ticks / CLOCK_TICKS

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for {self.name}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])


def spawn(
    name: str, command: list[str], workdir: Path, env: dict[str, str] | None = None, log: str = ""
) -> Server:
    log_path = workdir / f"{log or name}.log"
    with log_path.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env=env)
    return Server(name, proc, log_path)


def wait_listening(port: int, server: Server, seconds: float = 10) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.tail()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.01)
    raise RuntimeError(f"{server.name} is not listening on {port}:\n{server.tail()}")


# ---------------------------------------------------------------------------- requests


def routed_tier(port: int, body: bytes) -> str:
    """The tier that served a chat request (the sidecar's `x-sidecar-tier` header)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", CHAT_PATH, body, {"content-type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.getheader("x-sidecar-tier", "")
    finally:
        conn.close()


def post(port: int, path: str, body: bytes, timeout: float = 10) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body, {"content-type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def answer_problem(phase: str, status: int, body: bytes) -> str | None:
    """Why an answer is not a valid chat completion of this phase's kind, or None."""
    if status != 200:
        return f"status {status}: {body[:200]!r}"
    if phase == "stream":
        if not body.rstrip().endswith(b"data: [DONE]") or b"chat.completion.chunk" not in body:
            return f"not an SSE stream ending in [DONE]: {body[-200:]!r}"
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return f"not JSON: {body[:200]!r}"
    if payload.get("object") != "chat.completion" or not payload.get("choices"):
        return f"not a chat.completion: {body[:200]!r}"
    return None


def start_and_wait(
    name: str, proxy: Proxy, workdir: Path, port: int, phase: str, body: bytes
) -> tuple[Server, float]:
    """Spawn a proxy and poll it until it answers a chat request; seconds from spawn."""
    started = time.perf_counter()
    server = spawn(name, proxy.command, workdir, proxy.env, f"{name}-{phase}")
    deadline = started + 60
    while time.perf_counter() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {server.proc.returncode}:\n{server.tail()}")
        try:
            status, answer = post(port, CHAT_PATH, body, timeout=5)
        except OSError:
            time.sleep(0.005)
            continue
        problem = answer_problem(phase, status, answer)
        if problem:
            server.stop()
            raise RuntimeError(f"{name}'s first answer is wrong: {problem}")
        return server, time.perf_counter() - started
    server.stop()
    raise RuntimeError(f"{name} did not answer within 60 s:\n{server.tail()}")


class Stream:
    """One keep-alive HTTP/1.1 connection, read by hand: no client library's parsing time
    lands in the first-token figure. Handles Content-Length and chunked answers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def post(self, path: str, body: bytes) -> tuple[int, bytes, float]:
        """Status, body, and seconds from sending to holding the first whole `data:` line."""
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sent = time.perf_counter()
        self.sock.sendall(head.encode() + body)
        status, headers = self._head()
        first = float("nan")
        received = b""
        for piece in self._body(headers):
            received += piece
            if first != first:  # not yet: look for a whole `data:` line
                start = received.find(b"data:")
                if start >= 0 and b"\n" in received[start:]:
                    first = time.perf_counter() - sent
        return status, received, first

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buffer += data

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._more()
        taken, self.buffer = self.buffer[:size], self.buffer[size:]
        return taken

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._more()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _head(self) -> tuple[int, dict[bytes, bytes]]:
        status = int(self._line().split()[1])
        headers = {}
        while line := self._line():
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def _body(self, headers: dict[bytes, bytes]) -> Iterator[bytes]:
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            while size := int(self._line().split(b";")[0], 16):
                yield self._take(size)
                self._take(2)
            while self._line():  # trailers, then the empty line
                pass
            return
        remaining = int(headers.get(b"content-length", b"0"))
        while remaining:
            if not self.buffer:
                self._more()
            piece = self._take(min(remaining, len(self.buffer)))
            remaining -= len(piece)
            yield piece


def first_token_ms(port: int, path: str, body: bytes, count: int) -> tuple[float, list[str]]:
    """Median ms from sending a streamed request to holding its first `data:` line.

    Sequential requests on one keep-alive connection, after a tenth as many to warm up;
    every stream is read to its end and checked.
    """
    problems: list[str] = []
    times = []
    connection = Stream(port)
    try:
        for i in range(count + count // 10):
            status, answer, seconds = connection.post(path, body)
            problem = answer_problem("stream", status, answer)
            if problem or seconds != seconds:
                problems.append(problem or "no data line")
            elif i >= count // 10:
                times.append(seconds * 1000)
    finally:
        connection.close()
    return (statistics.median(times) if times else float("nan")), problems


@dataclass
class Load:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float
    errors: dict[str, int]
    others_pct: float


def core_busy_seconds(core: str) -> float:
    """CPU time spent on one core by any process: user, nice, system, and steal (the
    hypervisor running another machine); interrupts left out."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            user, nice, system, _idle, _iowait, _irq, _softirq, steal = line.split()[1:9]
            return (int(user) + int(nice) + int(system) + int(steal)) / CLOCK_TICKS
    raise RuntimeError(f"no cpu{core} in /proc/stat")


def run_wrk(
    url: str,
    connections: int,
    seconds: int,
    body_file: Path,
    server: Server,
    core: str | None,
    server_core: str | None = None,
) -> Load:
    """One wrk run. With `server_core`, also the share of that core that processes other
    than `server` took meanwhile (another test suite, a compiler): a disturbed figure."""
    # A request still unanswered after 30 s counts as an error (a hang, not a slow answer:
    # on a busy machine the tail at 128 connections passes wrk's default of 2 s).
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s"]
    command += ["-s", str(BENCH / "chat.lua")]
    env = {**os.environ, "BENCH_BODY": str(body_file)}
    before = server.cpu_seconds()
    core_before = core_busy_seconds(server_core) if server_core else 0.0
    started = time.perf_counter()
    done = subprocess.run(
        pinned(core, [*command, url]),
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    cpu = server.cpu_seconds() - before
    others = float("nan")
    if server_core:
        elapsed = time.perf_counter() - started
        others = max(0.0, core_busy_seconds(server_core) - core_before - cpu) / elapsed * 100
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
    result = json.loads(lines[-1].removeprefix("BENCH "))
    requests = result["requests"]
    return Load(
        requests=requests,
        rps=requests / (result["duration_us"] / 1e6),
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        cpu_us=cpu / requests * 1e6 if requests else float("nan"),
        errors={kind: n for kind, n in result["errors"].items() if n},
        others_pct=others,
    )


# ---------------------------------------------------------------------------- the run


@dataclass
class Context:
    plan: Plan
    workdir: Path
    upstream_port: int
    upstream_prefix: str  # "" or "/delay"
    policies: Path
    server_core: str | None
    client_core: str | None
    otlp_endpoint: str = ""  # the receiver's OTLP/HTTP endpoint
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def start_upstream(ctx: Context, delay_ms: float, echo: Path | None, fixtures: Path) -> Server:
    for phase, fixture in PHASES.items():
        target = ctx.workdir / "www" / phase / "v1" / "chat" / "completions"
        target.parent.mkdir(parents=True)
        shutil.copyfile(fixtures / fixture, target)
    config = (BENCH / "upstream.nginx.conf").read_text()
    if delay_ms:
        config = config.replace("#DELAY ", "").replace("@ECHO_MODULE@", str(echo))
    config = config.replace("@WORKDIR@", str(ctx.workdir)).replace("@DELAY@", f"{delay_ms / 1000}")
    config = config.replace("@PORT@", str(ctx.upstream_port))
    (ctx.workdir / "nginx.conf").write_text(config)
    nginx = ["nginx", "-p", str(ctx.workdir), "-c", str(ctx.workdir / "nginx.conf")]
    server = spawn("nginx", pinned(ctx.client_core, nginx), ctx.workdir)
    body = b'{"model": "auto", "messages": []}'
    for _ in range(500):
        try:
            post(ctx.upstream_port, f"{ctx.upstream_prefix}/plain{CHAT_PATH}", body)
            break
        except OSError:
            time.sleep(0.01)
    else:
        raise RuntimeError(f"nginx did not start:\n{server.tail()}")
    server.cpu_pids = [  # the workers do the work; the master only watches them
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _ppid(int(entry.name)) == server.proc.pid
    ]
    return server


def _ppid(pid: int) -> int | None:
    try:
        return int(proc_stat(pid)[1])
    except (OSError, ValueError, IndexError):
        return None


def echo_module() -> Path | None:
    """nginx's echo module (Debian: libnginx-mod-http-echo), which the delay needs."""
    configure = subprocess.run(["nginx", "-V"], capture_output=True, text=True).stderr
    modules = next(
        (a.split("=", 1)[1] for a in configure.split() if a.startswith("--modules-path=")),
        "modules",
    )
    module = Path(modules) / "ngx_http_echo_module.so"
    return module if module.exists() else None


def compile_bytecode() -> None:
    """Write the bytecode of the sidecar and of the plugins' sources, as installing a wheel
    does. They are imported from this checkout (installed editable): with
    PYTHONDONTWRITEBYTECODE set (the Dockerfile sets it, so do many CI and sandbox shells)
    nothing else ever writes it, and every start-up would compile some 60 modules from
    source, ~0.2 s that a deployed sidecar never spends."""
    sources = [REPO / "sidecar", *sorted((REPO / "plugins").glob("*/src"))]
    command = [sys.executable, "-m", "compileall", "-q", *map(str, sources)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def rotel_agent() -> Path | None:
    """The collector binary of the `rotel` package (in the test extras), if installed."""
    try:
        import rotel
    except ImportError:
        return None
    agent = Path(rotel.__file__).parent / "rotel-agent"
    return agent if agent.exists() else None


def start_receiver(ctx: Context, agent: Path) -> Server:
    """A real OTLP receiver that accepts everything and keeps nothing, on the client core."""
    grpc_port, http_port = free_port(), free_port()
    command = [str(agent), "start", "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}"]
    command += ["--otlp-http-endpoint", f"127.0.0.1:{http_port}", "--exporter", "blackhole"]
    server = spawn("otlp-receiver", pinned(ctx.client_core, command), ctx.workdir)
    for port in (grpc_port, http_port):
        wait_listening(port, server)
    ctx.otlp_endpoint = f"http://127.0.0.1:{http_port}"
    return server


def sidecar_config(ctx: Context, phase: str, name: str, port: int) -> Path:
    config = yaml.safe_load((BENCH / "sidecar.yaml").read_text())
    config["server"]["port"] = port
    for provider in config["providers"].values():
        provider["base_url"] = (
            f"http://127.0.0.1:{ctx.upstream_port}{ctx.upstream_prefix}/{phase}/v1"
        )
    # A copy per sidecar: the reload measurement saves a policy file into it.
    policies = ctx.workdir / f"policies-{phase}-{name}"
    shutil.copytree(ctx.policies, policies, ignore=shutil.ignore_patterns(".*", "tests"))
    config["routing"]["policies"] = str(policies)
    config.setdefault("ledger", {})["path"] = str(ctx.workdir / f"ledger-{phase}-{name}.db")
    path = ctx.workdir / f"{name}-{phase}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class Proxy:
    command: list[str]
    env: dict[str, str]


def proxies(ctx: Context, phase: str, ports: dict[str, int]) -> dict[str, Proxy]:
    upstream = f"http://127.0.0.1:{ctx.upstream_port}{ctx.upstream_prefix}/{phase}/v1"
    passthrough = [sys.executable, str(BENCH / "passthrough.py"), "--upstream", upstream]
    # Telemetry is on only when an OTEL_* variable asks: none leak in from this shell.
    quiet = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    exporting = {**quiet, "OTEL_EXPORTER_OTLP_ENDPOINT": ctx.otlp_endpoint}
    found = {"pass-through": Proxy([*passthrough, "--port", str(ports["pass-through"])], quiet)}
    for name, env in (("sidecar", exporting), ("sidecar-telemetry-off", quiet)):
        config = sidecar_config(ctx, phase, name, ports[name])
        command = [sys.executable, "-m", "sidecar", "serve", "--config", str(config)]
        found[name] = Proxy(command, env)
    for proxy in found.values():
        proxy.command = pinned(ctx.server_core, proxy.command)
    return found


RELOAD_POLICY = "00-bench-reload.yaml"  # first in name order: its route wins


def reload_seconds(
    ctx: Context, policies: Path, url: str, port: int, body: bytes, server: Server
) -> tuple[list[float], list[str]]:
    """Under load (wrk, 32 connections, on the client core), save a policy file that
    routes every request to another tier, as an editor does (a temporary file renamed over
    it), and time it until a request is served by that tier; `plan.reloads` times, each
    to a tier other than the one in force. A request takes what a request takes under that
    load, so the time includes one request's latency."""
    count = ctx.plan.reloads
    times: list[float] = []
    problems: list[str] = []
    body_file = ctx.workdir / "reload-load.json"
    body_file.write_bytes(body)
    seconds = 2 + count  # outlasts the reloads: each takes well under a second
    load: list[Load] = []

    def keep_busy() -> None:
        try:
            load.append(run_wrk(url, 32, seconds, body_file, server, ctx.client_core))
        except Exception as exc:  # reported with the reload figures
            problems.append(f"load while reloading: {exc}")

    worker = threading.Thread(target=keep_busy)
    worker.start()
    target = policies / RELOAD_POLICY
    try:
        time.sleep(1)  # the load under way
        current = routed_tier(port, body)
        for _ in range(count):
            tier = "frontier" if current == "light" else "light"
            temporary = policies / f".{RELOAD_POLICY}.tmp"
            temporary.write_text(f"when: true\nroute: {{tier: {tier}}}\n")
            saved = time.perf_counter()
            os.replace(temporary, target)
            while routed_tier(port, body) != tier:
                if time.perf_counter() - saved > 10:
                    problems.append(f"a policy routing to {tier} was not in force within 10 s")
                    break
            else:
                times.append(time.perf_counter() - saved)
                current = tier
            time.sleep(0.2)
    finally:
        target.unlink(missing_ok=True)
        worker.join()
    if load and (load[0].errors or not load[0].requests):
        problems.append(f"load while reloading: {load[0].requests} requests, {load[0].errors}")
    return times, problems


def check_export(ctx: Context, phase: str, server: Server) -> None:
    """Fail the run if the telemetry sidecar could not export; note spans it dropped."""
    lines = server.log.read_text(errors="replace").splitlines()
    failed = [line for line in lines if any(text in line for text in EXPORT_FAILED)]
    if failed:
        ctx.failures.append(f"{phase} {server.name}: telemetry export failed: {failed[0]}")
    dropped = sum(EXPORT_DROPPED in line for line in lines)
    if dropped:
        ctx.notes.append(f"{phase}: the telemetry sidecar's span queue overflowed {dropped} times")


def run_phase(ctx: Context, phase: str, upstream: Server) -> dict[str, Samples]:
    plan = ctx.plan
    body = json.dumps(chat_request(stream=phase == "stream")).encode()
    body_file = ctx.workdir / f"{phase}.json"
    body_file.write_bytes(body)
    ports = {name: free_port() for name in PROXIES}
    commands = proxies(ctx, phase, ports)
    upstream_path = f"{ctx.upstream_prefix}/{phase}{CHAT_PATH}"
    urls = {
        "upstream": f"http://127.0.0.1:{ctx.upstream_port}{upstream_path}",
        **{name: f"http://127.0.0.1:{port}{CHAT_PATH}" for name, port in ports.items()},
    }
    result: dict[str, defaultdict[str, list[float]]] = {t: defaultdict(list) for t in TARGETS}
    servers = {"upstream": upstream}
    try:
        for name, proxy in commands.items():
            for attempt in range(plan.startups):
                server, seconds = start_and_wait(name, proxy, ctx.workdir, ports[name], phase, body)
                result[name]["start_s"].append(seconds)
                progress(f"{phase}: {name} answered {seconds:.2f} s after spawn")
                if attempt < plan.startups - 1:
                    server.stop()
            servers[name] = server
            time.sleep(plan.settle)  # let start-up work settle before reading the idle RSS
            result[name]["rss_idle"].append(server.rss_mib())
        if plan.warmup:
            for target in TARGETS:
                run_wrk(urls[target], 32, 1, body_file, servers[target], ctx.client_core)
        for rep in range(plan.reps):
            for connections in plan.concurrencies:
                for target in TARGETS:
                    for attempt in range(1 + plan.retries):
                        load = run_wrk(
                            urls[target],
                            connections,
                            plan.seconds,
                            body_file,
                            servers[target],
                            ctx.client_core,
                            None if target == "upstream" else ctx.server_core,
                        )
                        if not load.others_pct > DISTURBED_PCT or attempt == plan.retries:
                            break
                        progress(f"{target}: {load.others_pct:.0f}% of its core went elsewhere")
                    for key in ("rps", "p50_ms", "p99_ms", "cpu_us"):
                        result[target][f"{key}@{connections}"].append(getattr(load, key))
                    if load.others_pct == load.others_pct:
                        result[target]["others_pct"].append(load.others_pct)
                    if load.errors or not load.requests:
                        ctx.failures.append(
                            f"{phase} {target} c={connections}: {load.requests} requests, "
                            f"errors {load.errors}"
                        )
                    progress(
                        f"{phase} rep {rep + 1}/{plan.reps} c={connections:<3} {target:<21} "
                        f"{load.rps:8.0f} req/s  p50 {load.p50_ms:7.2f} ms  "
                        f"{load.cpu_us:6.0f} us CPU/req  {load.errors or ''}"
                    )
        if phase == "stream":
            for target in TARGETS:
                port = ports.get(target, ctx.upstream_port)
                path = upstream_path if target == "upstream" else CHAT_PATH
                ms, problems = first_token_ms(port, path, body, plan.first_tokens)
                result[target]["ttft_ms"].append(ms)
                ctx.failures.extend(f"stream {target} first token: {p}" for p in problems[:3])
                progress(f"stream: {target} first token {ms:.2f} ms")
        for name in ports:
            if name in servers:
                result[name]["rss_load"].append(servers[name].rss_mib())
        if phase == "plain":
            for name in ("sidecar", "sidecar-telemetry-off"):
                policies = ctx.workdir / f"policies-{phase}-{name}"
                times, problems = reload_seconds(
                    ctx, policies, urls[name], ports[name], body, servers[name]
                )
                result[name]["reload_s"].extend(times)
                ctx.failures.extend(f"{phase} {name} reload: {p}" for p in problems[:3])
                if times:
                    progress(
                        f"{phase}: {name}: a saved policy in force after "
                        f"{statistics.median(times):.3f} s (median of {len(times)})"
                    )
    finally:
        for name in ports:
            if name in servers:
                servers[name].stop()
        if "sidecar" in servers:
            check_export(ctx, phase, servers["sidecar"])
    return {target: dict(samples) for target, samples in result.items()}


def chat_request(*, stream: bool) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": "auto",
        "messages": [{"role": "user", "content": (BENCH / "prompt.txt").read_text()}],
    }
    if stream:
        request["stream"] = True
    return request


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- the table


Samples = dict[str, list[float]]  # figure -> one value per repetition


def paired(values: list[float] | None, base: list[float] | None, op: str) -> float | None:
    """Median of a figure, or of its per-repetition difference or ratio to `base`.

    Targets are measured in turn within each repetition, so pairing them by repetition
    cancels most of the drift of a noisy machine; figures with unequal counts (start-ups,
    memory) compare medians.
    """
    if not values or (op != "abs" and not base):
        return None
    if op == "abs":
        return statistics.median(values)
    assert base is not None
    pairs = zip(values, base, strict=True) if len(values) == len(base) else None
    if pairs is None:
        values, base = [statistics.median(values)], [statistics.median(base)]
        pairs = zip(values, base, strict=True)
    if op == "minus":
        return statistics.median(v - b for v, b in pairs)
    ratios = [v / b for v, b in pairs if b]
    return statistics.median(ratios) if ratios else None


def table(phase: str, data: dict[str, Samples], plan: Plan) -> tuple[str, list[str]]:
    """The phase's table. Targets are checked on the sidecar as it ships, telemetry on."""
    up, pt, sc, off = (data[t] for t in TARGETS)
    lines = [
        "| figure | upstream | pass-through | sidecar | sidecar, telemetry off "
        "| sidecar / pass-through | telemetry on / off | target |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    misses: list[str] = []

    def verdict(label: str, value: float | None, limit: float | None, what: str) -> str:
        if limit is None or value is None:
            return ""
        ok = value <= limit
        if not ok:
            misses.append(f"{phase}: {label}: {value:.2f} > {limit:g}")
        return f"{what} ≤ {limit:g}: {'ok' if ok else 'MISS'}"

    def row(label: str, key: str, digits: int, limit: float | None = None, on: str = "") -> None:
        values = [paired(d.get(key), None, "abs") for d in (up, pt, sc, off)]
        ratios: list[float | None] = [None, None]
        if on != "no ratio":
            ratios = [paired(sc.get(key), base.get(key), "ratio") for base in (pt, off)]
        check = ratios[0] if on == "ratio" else values[2]
        mark = verdict(label, check, limit, "ratio" if on == "ratio" else "sidecar")
        cells = " | ".join(_fmt(v, digits) for v in values)
        lines.append(
            f"| {label} | {cells} | {_fmt(ratios[0], 2)} | {_fmt(ratios[1], 2)} | {mark} |"
        )

    def added(label: str, key: str, limit: float | None = None) -> None:
        base = up.get(key)
        p, s, o = (paired(d.get(key), base, "minus") for d in (pt, sc, off))
        pt_added, sc_added, off_added = (
            [v - b for v, b in zip(d.get(key, []), base or [], strict=False)] for d in (pt, sc, off)
        )
        ratios = [paired(sc_added, other, "ratio") for other in (pt_added, off_added)]
        mark = verdict(label, s, limit, "sidecar")
        cells = " | ".join(_fmt(v, 2) for v in (p, s, o, *ratios))
        lines.append(f"| {label} | — | {cells} | {mark} |")

    for c in plan.concurrencies:
        row(f"requests/s, {c} conn", f"rps@{c}", 0)
    for c in plan.latency_at:
        row(f"latency p50, {c} conn (ms)", f"p50_ms@{c}", 2)
        row(f"latency p99, {c} conn (ms)", f"p99_ms@{c}", 2)
        added(f"added p50 over upstream, {c} conn (ms)", f"p50_ms@{c}", 0.8 if c == 1 else None)
        added(f"added p99 over upstream, {c} conn (ms)", f"p99_ms@{c}")
    for c in plan.latency_at:
        row(f"CPU per request, {c} conn (µs)", f"cpu_us@{c}", 0, 1.5, "ratio")
    if "ttft_ms" in sc:
        row("first token p50 (ms)", "ttft_ms", 2)
        added("added first token p50 over upstream (ms)", "ttft_ms", 1.2)
    row("RSS idle after start (MiB)", "rss_idle", 1, 70)
    row("RSS after load (MiB)", "rss_load", 1, 90)
    row("start to first answer (s)", "start_s", 2, 1.0)
    if "reload_s" in sc:
        row("saved policy in force under load, 32 conn (s)", "reload_s", 3, 0.5, "no ratio")
    if "others_pct" in sc:
        row("proxy core taken by other processes (%)", "others_pct", 1, on="no ratio")
    return "\n".join(lines), misses


def _fmt(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


# ---------------------------------------------------------------------------- main


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )

    def output(*command: str) -> str:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        return (done.stdout + done.stderr).strip()

    commit = (
        output("git", "-C", str(REPO), "rev-parse", "--short", "HEAD")
        if shutil.which("git")
        else ""
    )
    nginx = output("nginx", "-v").removeprefix("nginx version: ")
    wrk = output("wrk", "-v").split()[1]
    return (
        f"commit {commit or 'unknown'}; {os.cpu_count()} cores ({model}); "
        f"Python {sys.version.split()[0]}; {nginx}; wrk {wrk}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run: a few seconds")
    parser.add_argument("--delay-ms", type=float, default=0, help="upstream answer delay")
    parser.add_argument("--seconds", type=int, help="seconds per wrk run (full: 5)")
    parser.add_argument("--reps", type=int, help="wrk runs per figure, median (full: 3)")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES, help="OpenAI fixtures")
    parser.add_argument(
        "--policies",
        type=Path,
        help="the sidecar's policy directory (default: the repository's policies/ if it "
        "holds policy files, else an empty one)",
    )
    parser.add_argument("--json", type=Path, help="also write every sample here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()

    missing = [tool for tool in ("nginx", "wrk", "taskset") if not shutil.which(tool)]
    if missing:
        print(f"missing: {', '.join(missing)} (apt-get install -y nginx wrk)", file=sys.stderr)
        return 2
    agent = rotel_agent()
    if agent is None:
        print("missing: rotel's collector (pip install -e '.[test]')", file=sys.stderr)
        return 2
    plan = QUICK if args.quick else FULL
    plan = dataclasses.replace(
        plan, seconds=args.seconds or plan.seconds, reps=args.reps or plan.reps
    )
    echo = echo_module() if args.delay_ms else None
    if args.delay_ms and not echo:
        print("--delay-ms needs nginx's echo module: apt-get install -y libnginx-mod-http-echo")
        return 2
    cores = sorted(os.sched_getaffinity(0))
    client_core, server_core = (str(cores[0]), str(cores[1])) if len(cores) > 1 else (None, None)
    if client_core is not None:
        os.sched_setaffinity(0, {cores[0]})  # this script's own requests: on the client core

    workdir = Path(tempfile.mkdtemp(prefix="sidecar-bench-"))
    workdir.chmod(0o755)  # nginx's workers run as an unprivileged user when started by root
    policies = args.policies or REPO / "policies"
    if not args.policies and not any(p.suffix in (".yaml", ".yml") for p in policies.glob("[!.]*")):
        policies = workdir / "policies"
        policies.mkdir()
    policies = policies.resolve()
    ctx = Context(
        plan,
        workdir,
        free_port(),
        "/delay" if args.delay_ms else "",
        policies,
        server_core,
        client_core,
    )
    compile_bytecode()
    load_before = f"{os.getloadavg()[0]:.2f}"
    began = time.perf_counter()
    results: dict[str, Any] = {}
    upstream = receiver = None
    try:
        receiver = start_receiver(ctx, agent)
        upstream = start_upstream(ctx, args.delay_ms, echo, args.fixtures)
        for phase in PHASES:
            results[phase] = run_phase(ctx, phase, upstream)
    except Exception as exc:  # reported with the figures gathered so far; exit status 1
        ctx.failures.append(f"{type(exc).__name__}: {exc}")
    finally:
        for helper in (upstream, receiver):
            if helper is not None:
                helper.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - began

    shown = policies.relative_to(REPO) if policies.is_relative_to(REPO) else policies
    n_policies = len([p for p in policies.glob("[!.]*") if p.suffix in (".yaml", ".yml")])
    print(f"# sidecar benchmark{' (quick)' if args.quick else ''}\n")
    print(
        f"{machine()}. Proxies pinned to core {server_core}, wrk/nginx/OTLP receiver/client "
        f"to core {client_core}. wrk -t1, {plan.seconds} s per run, median of {plan.reps}; "
        f"upstream delay {args.delay_ms:g} ms; {n_policies} policies "
        f"({shown}); {elapsed:.0f} s in all; load average {load_before} before, "
        f"{os.getloadavg()[0]:.2f} after (other work on the machine skews every figure).\n"
    )
    misses: list[str] = []
    for phase, data in results.items():
        text, phase_misses = table(phase, data, plan)
        misses += phase_misses
        print(f"## {phase} requests\n\n{text}\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if misses:
        print(
            "Targets missed (informative, not a failure):\n" + "\n".join(f"- {m}" for m in misses)
        )
    if ctx.notes:
        print("\nNotes:\n" + "\n".join(f"- {n}" for n in ctx.notes))
    if args.keep:
        print(f"\nscratch directory: {workdir}")
    if ctx.failures:
        print("\nFAILED:\n" + "\n".join(f"- {f}" for f in ctx.failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
