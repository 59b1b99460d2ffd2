"""Section "a real service": the README's main job over HTTP, and what each plugin costs in it.

The main job is examples/items with every plugin on (logging, auth with an
API key, throttle, cache, sqlalchemy): its own ``service.py``, copied
verbatim into a scratch folder beside the bench's copy of its ``api.json``
(identical but for ``put_item``'s throttle limit, 5 a minute in the example,
raised here so that the writes measure the service and not the limit),
served by ``pyservice serve`` with its default server and 2 workers, as a
user runs it. Each call carries the API key (``Authorization: ApiKey ...``)
made the way examples/items/run.py makes it.

- **read**: ``get_item`` of an item stored first, a cache hit after each
  worker's first call;
- **write**: ``put_item`` of a new row each call.

Both with the embedded backends (SQLite, and the throttle's and cache's
memory) and with Redis and PostgreSQL (``ITEMS_BACKENDS=shared``, a private
Redis key prefix whose keys are deleted at the end, and a private PostgreSQL
database, dropped at the end). The limit is the bare WSGI function of the
other sections, served by granian with its defaults (the fastest server)
and by ``pyservice serve``'s default server, in the same interleaved rounds.

The breakdown serves ``suite.items`` with one plugin switched off at a time,
and with none on (with sqlalchemy off, the handlers use SQLAlchemy directly).

In-process, the same calls through the same service objects, with the bare
function as the reference: the issue's figure of the cache-hit read with
every plugin on (target: under 40 µs).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .apps import PATH, bare_app, expected_result
from .modes import Mode
from .payloads import SMALL, SMALL_BODY
from .progress import Progress
from .served import BENCH, Server, drive
from .timing import Case, run_rounds
from .wsgi import call_once, environ_for, run_batch

SECTION = "service"
ROOT = BENCH.parent
EXAMPLE = ROOT / "examples" / "items"
WORKERS = 2
#: put_item's throttle limit in the bench's copy of api.json (the example's: 5/minute).
WRITE_LIMIT = "1000000/second"
READ_TARGET = 0.4  # the issue: the read reaches at least this share of the bare function's req/s under granian
INPROCESS_TARGET_US = 40.0  # the issue: the cache-hit read with every plugin on, in-process
OPERATIONS = {"read": "get_item", "write": "put_item"}
ITEM = {"name": "teapot", "colour": "blue"}
WRITE_BODY = orjson.dumps({"item": ITEM})
#: The breakdown's cases: what is off, and its label.
VARIANTS = {
    "logging": "logging off",
    "auth": "auth off",
    "throttle": "throttle off",
    "cache": "cache off",
    "sqlalchemy": "sqlalchemy off (SQLAlchemy used directly)",
    "all": "no plugins (SQLAlchemy used directly)",
}
BACKENDS = {"embedded": "SQLite + memory", "shared": "PostgreSQL + Redis"}


def path_of(operation: str) -> str:
    return f"/api/v1/{operation}"


def default_server() -> str:
    """The server ``pyservice serve`` runs when ``--server`` is not given, read from its help."""
    done = subprocess.run(
        [sys.executable, "-m", "pyservice", "serve", "--help"], capture_output=True, text=True, check=False
    )
    text = " ".join(done.stdout.split())
    described = re.search(r"--server \{[^}]*\} (.*?)(?: --|$)", text)
    words = described.group(1) if described else ""
    # "(default: gunicorn)" or "pyservice (default), gunicorn or granian"
    found = re.search(r"\(default:\s*([\w-]+)\)", words) or re.search(r"([\w-]+) \(default\)", words)
    return found.group(1) if found else "default"


# -- servers ---------------------------------------------------------------------------


@dataclass
class Served(Server):
    """A process serving one case: its own command, folder and environment."""

    argv: list[str] = field(default_factory=list)
    cwd: Path = BENCH
    extra_env: dict[str, str] = field(default_factory=dict)
    kind: str = "items"  # "limit" (the bare function) or "items"
    backends: str = ""
    label: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    read_body: bytes = b""

    @property
    def command(self) -> list[str]:
        return [*self.argv, "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]

    def start(self) -> None:
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        env = {key: value for key, value in os.environ.items() if not key.startswith(("ITEMS_", "BENCH_ITEMS"))}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH), os.environ.get("PYTHONPATH")]))
        env.update(self.extra_env)
        self.process = subprocess.Popen(
            self.command, cwd=self.cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def call(self, operation: str, body: bytes) -> tuple[int, Any]:
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            headers = {"Content-Type": "application/json", **self.headers}
            connection.request("POST", PATH if self.kind == "limit" else path_of(operation), body, headers)
            response = connection.getresponse()
            data = response.read()
            return response.status, orjson.loads(data) if data else None
        finally:
            connection.close()

    def wait_ready(self, seconds: float = 60.0) -> None:
        """Wait for the first correct answer; an items server stores the item its reads will get."""
        deadline = time.monotonic() + seconds
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} ({self.backends}) exited:\n{self.output()[-3000:]}")
            try:
                status, answer = self.call("put_item", SMALL_BODY if self.kind == "limit" else WRITE_BODY)
            except OSError as exc:
                last = exc
                time.sleep(0.1)
                continue
            if self.kind == "limit":
                if status != 200 or answer != expected_result(SMALL):
                    raise RuntimeError(f"{self.label} answered {status}: {answer!r}")
                return
            if status != 200 or not isinstance(answer, dict) or not isinstance(answer.get("id"), int):
                raise RuntimeError(f"{self.label} ({self.backends}) answered put_item {status}: {answer!r}")
            self.read_body = orjson.dumps({"id": answer["id"]})
            status, answer = self.call("get_item", self.read_body)
            if status != 200 or answer != {"item": ITEM}:
                raise RuntimeError(f"{self.label} ({self.backends}) answered get_item {status}: {answer!r}")
            return
        raise RuntimeError(f"{self.label} ({self.backends}) did not answer within {seconds}s ({last})")

    def drive(self, operation: str, seconds: float, connections: int) -> dict[str, Any]:
        if self.kind == "limit":
            return drive(self.port, seconds, connections)
        body = self.read_body if operation == "read" else WRITE_BODY
        return drive(self.port, seconds, connections, body, path_of(OPERATIONS[operation]), self.headers)


# -- the scratch folder: the example's copy, keys, databases ----------------------------------


@dataclass
class Setup:
    """What every items server of one run shares: the scratch folder, the API key, the private backends."""

    scratch: Path
    env: dict[str, str]  # the operator's part, as examples/items/run.py makes it
    api_key: str
    redis_prefix: str
    database: str = ""  # the private PostgreSQL database, once made

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"ApiKey {self.api_key}"}

    def backend_env(self, backends: str, name: str) -> dict[str, str]:
        if backends == "shared":
            return {
                "ITEMS_BACKENDS": "shared",
                "ITEMS_REDIS_PREFIX": self.redis_prefix,
                "ITEMS_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.database}",
            }
        return {"ITEMS_DATABASE_URL": f"sqlite:///{self.scratch}/{name}.sqlite3"}


def write_example(scratch: Path) -> Path:
    """The example's service.py, verbatim, beside the bench's api.json: put_item's limit raised, nothing else."""
    folder = scratch / "items"
    folder.mkdir()
    shutil.copy(EXAMPLE / "service.py", folder / "service.py")
    api = json.loads((EXAMPLE / "api.json").read_text())
    api["operations"]["put_item"]["plugins"]["throttle"]["limit"] = WRITE_LIMIT
    (folder / "api.json").write_text(json.dumps(api, indent=4) + "\n")
    return folder


@contextlib.contextmanager
def setup(shared: bool, progress: Progress) -> Iterator[Setup]:
    """The scratch folder, an API key, and (with ``shared``) a private database and Redis prefix, cleaned up after."""
    from pyservice_auth import generate_api_key

    with tempfile.TemporaryDirectory(prefix="bench-service-") as folder:
        scratch = Path(folder)
        write_example(scratch)
        pepper = secrets.token_hex(32)
        key = generate_api_key(pepper, prefix="bench")
        env = {"ITEMS_PEPPER": pepper, "ITEMS_API_KEY_PREFIX": key.prefix, "ITEMS_API_KEY_HASH": key.hash}
        tag = f"{os.getpid()}_{secrets.token_hex(3)}"
        done = Setup(scratch, env, key.key, redis_prefix=f"bench-service-{tag}")
        try:
            if shared:
                done.database = f"bench_items_{tag}"
                _postgres(f"CREATE DATABASE {done.database}")
                # The table once, before several servers' create_all could race on it.
                from sqlalchemy import create_engine

                from .items import Base

                engine = create_engine(done.backend_env("shared", "")["ITEMS_DATABASE_URL"])
                Base.metadata.create_all(engine)
                engine.dispose()
            yield done
        finally:
            if shared:
                _clean_redis(done.redis_prefix, progress)
                if done.database:
                    _postgres(f"DROP DATABASE IF EXISTS {done.database} WITH (FORCE)")


def _postgres(statement: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True, connect_timeout=5) as conn:
        conn.execute(statement)  # type: ignore[arg-type] - a name the bench made, not input


def _clean_redis(prefix: str, progress: Progress) -> None:
    """Delete the keys under the bench's own prefix; never anything else."""
    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    except redis.RedisError as exc:
        progress.note(SECTION, f"could not delete the Redis keys under {prefix}*: {exc}")
    finally:
        client.close()


def shared_available() -> str | None:
    """Why Redis and PostgreSQL cannot be used here, or None."""
    try:
        import psycopg
        import redis
    except ImportError as exc:
        return f"{exc.name} is not installed"
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=2).ping()
        psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", connect_timeout=2).close()
    except Exception as exc:
        return f"Redis or PostgreSQL at 127.0.0.1 is not reachable ({exc})"
    return None


# -- the cases ---------------------------------------------------------------------------


def limit_servers(server_name: str) -> list[Served]:
    """The bare function under granian (with its defaults) and under pyservice serve's default server."""
    granian = Served(
        "bare",
        "granian",
        WORKERS,
        argv=[sys.executable, "-m", "granian", "--interface", "wsgi", "suite.apps:bare_app"],
        kind="limit",
        label="bare WSGI function, granian",
    )
    default = Served(
        "bare",
        server_name,
        WORKERS,
        # pyservice serve serves Services only: BareService is one whose WSGI callable is the bare function.
        argv=[sys.executable, "-m", "pyservice", "serve", "suite.apps:bare_service"],
        kind="limit",
        label=f"bare WSGI function, pyservice serve's default ({server_name})",
    )
    return [granian, default]


def items_servers(done: Setup, backends: str, server_name: str, breakdown: bool) -> list[Served]:
    example = Served(
        "example",
        server_name,
        WORKERS,
        argv=[sys.executable, "-m", "pyservice", "serve", "service:service"],
        cwd=done.scratch / "items",
        extra_env={**done.env, **done.backend_env(backends, f"{backends}-example")},
        backends=backends,
        label="every plugin on (examples/items)",
        headers=done.headers,
    )
    servers = [example]
    if breakdown:
        for off, label in VARIANTS.items():
            env = {
                **done.env,
                **done.backend_env(backends, f"{backends}-{off}"),
                "BENCH_ITEMS_OFF": off,
                "BENCH_ITEMS_API": str(done.scratch / "items" / "api.json"),
            }
            servers.append(
                Served(
                    f"off:{off}",
                    server_name,
                    WORKERS,
                    argv=[sys.executable, "-m", "pyservice", "serve", "suite.items:service"],
                    extra_env=env,
                    backends=backends,
                    label=label,
                    headers=done.headers,
                )
            )
    return servers


def measure(
    servers: list[Served], limits: list[Served], mode: Mode, progress: Progress, group: str
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Interleaved rounds over every (server, operation) of ``servers`` and the limits; wrk's figures per run."""
    pairs = [(server, "bare") for server in limits]
    pairs += [(server, operation) for server in servers for operation in OPERATIONS]
    if mode.http_warmup:
        for server, operation in pairs:
            server.drive(operation, mode.http_warmup, mode.http_connections)
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {(s.app + "/" + s.server, op): [] for s, op in pairs}
    for number in range(mode.service_rounds):
        shift = number % len(pairs)
        for server, operation in pairs[shift:] + pairs[:shift]:
            result = server.drive(operation, mode.service_seconds, mode.http_connections)
            runs[(server.app + "/" + server.server, operation)].append(result)
            progress.step(
                SECTION,
                f"{group} round {number + 1}/{mode.service_rounds} {server.label[:44]:<44} {operation:<5} "
                f"{result['requests_per_s']:8.0f} req/s",
            )
    return runs


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["requests_per_s"] for r in results]
    return {
        "requests_per_s": statistics.median(rates),
        "requests_per_s_min": min(rates),
        "requests_per_s_max": max(rates),
        "p50_ms": statistics.median(r["p50_us"] for r in results) / 1000,
        "p90_ms": statistics.median(r["p90_us"] for r in results) / 1000,
        "p99_ms": statistics.median(r["p99_us"] for r in results) / 1000,
        "p999_ms": statistics.median(r["p999_us"] for r in results) / 1000,
        "requests": sum(r["requests"] for r in results),
        "errors": sum(
            r[k]
            for r in results
            for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
        ),
    }


def http_rows(
    group: str,
    servers: list[Served],
    limits: list[Served],
    runs: dict[tuple[str, str], list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    granian, default = limits
    on_granian = statistics.median(r["requests_per_s"] for r in runs[(granian.app + "/" + granian.server, "bare")])
    on_default = statistics.median(r["requests_per_s"] for r in runs[(default.app + "/" + default.server, "bare")])
    rows = []
    for server in [*limits, *servers]:
        for operation in ("bare",) if server.kind == "limit" else tuple(OPERATIONS):
            row = {
                "backends": group,
                "case": server.app,
                "label": server.label,
                "server": server.server,
                "operation": operation,
                **summarise(runs[(server.app + "/" + server.server, operation)]),
            }
            row["ratio_to_granian"] = row["requests_per_s"] / on_granian
            row["ratio_to_default"] = row["requests_per_s"] / on_default
            rows.append(row)
    return rows


def breakdown(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per backend set and operation: each variant against every plugin on."""
    out = []
    for group in dict.fromkeys(r["backends"] for r in rows if r["backends"]):
        for operation in OPERATIONS:
            on = next(
                r for r in rows if r["backends"] == group and r["case"] == "example" and r["operation"] == operation
            )
            for row in rows:
                if row["backends"] != group or row["operation"] != operation or not row["case"].startswith("off:"):
                    continue
                out.append(
                    {
                        "backends": group,
                        "operation": operation,
                        "off": row["case"].removeprefix("off:"),
                        "label": row["label"],
                        "requests_per_s": row["requests_per_s"],
                        "every_plugin_on": on["requests_per_s"],
                        "speedup": row["requests_per_s"] / on["requests_per_s"],
                        # The server's time per request, 1 / req/s, with the plugin on less with it off.
                        "us_per_request": 1e6 / on["requests_per_s"] - 1e6 / row["requests_per_s"],
                        "ratio_to_granian": row["ratio_to_granian"],
                    }
                )
    return out


# -- in-process ---------------------------------------------------------------------------


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set (and the example's other variables unset), restored after."""
    saved = {key: value for key, value in os.environ.items() if key.startswith(("ITEMS_", "BENCH_ITEMS"))}
    for key in saved:
        del os.environ[key]
    os.environ.update(values)
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith(("ITEMS_", "BENCH_ITEMS"))]:
            del os.environ[key]
        os.environ.update(saved)


def load_example(folder: Path, name: str) -> Any:
    """The example's service.py (the scratch copy) imported in this process, as a module of its own."""
    spec = importlib.util.spec_from_file_location(name, folder / "service.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # SQLAlchemy resolves the models' annotations through it
    spec.loader.exec_module(module)
    return module.service


def items_case(label: str, app: Any, operation: str, body: bytes, headers: dict[str, str], group: str) -> Case:
    path = path_of(OPERATIONS[operation])

    def batch(n: int) -> float:
        environs = [environ_for(body, headers, path) for _ in range(n)]
        started = time.perf_counter()
        run_batch(app, environs)
        return time.perf_counter() - started

    def check() -> None:
        answer = call_once(app, environ_for(body, headers, path))
        if not answer.status.startswith("200"):
            raise RuntimeError(f"{label}: expected 200, got {answer.status}: {answer.body[:300]!r}")

    return Case(label, batch, group, {"operation": operation}, check)


def stored_item(app: Any, headers: dict[str, str]) -> bytes:
    """Put the item the reads get; the body of the read."""
    answer = call_once(app, environ_for(WRITE_BODY, headers, path_of("put_item")))
    if not answer.status.startswith("200"):
        raise RuntimeError(f"put_item in-process: {answer.status}: {answer.body[:300]!r}")
    return orjson.dumps({"id": orjson.loads(answer.body)["id"]})


def inprocess(mode: Mode, progress: Progress, done: Setup) -> dict[str, Any]:
    """The items service called in-process, embedded backends: every plugin on, and each off in turn."""
    from . import items
    from .timing import wsgi_case
    from .wsgi import same_body

    cases = [wsgi_case("bare WSGI function", bare_app, same_body(SMALL_BODY), "limit")]
    with contextlib.ExitStack() as stack:
        # The logging plugin writes each line to sys.stdout as it is when the line is written.
        sink = stack.enter_context(open(os.devnull, "w"))
        stack.enter_context(contextlib.redirect_stdout(sink))
        builds: list[tuple[str, str, Callable[[], Any]]] = [
            (
                "every plugin on (examples/items)",
                "example",
                lambda: load_example(done.scratch / "items", "bench_items"),
            ),
        ]
        for off, label in VARIANTS.items():
            builds.append((label, off, lambda off=off: items.build(items.parse_off(off))))
        for label, key, make in builds:
            env = {
                **done.env,
                **done.backend_env("embedded", f"inprocess-{key}"),
                "BENCH_ITEMS_API": str(done.scratch / "items" / "api.json"),
            }
            with environment(env):
                app = make()
            app.compile()
            read_body = stored_item(app, done.headers)
            cases.append(items_case(f"{label}: read", app, "read", read_body, done.headers, key))
            if key == "example":
                # One write beside the reads: a SQLite commit waits for the disk (tens of ms on a
                # shared one) and would set every round's pace; the breakdown of writes is over HTTP.
                cases.append(items_case(f"{label}: write", app, "write", WRITE_BODY, done.headers, key))
        progress.step(SECTION, f"in-process: {len(cases)} cases, {mode.rounds} rounds of ~{mode.target}s each")
        results = run_rounds(SECTION, cases, rounds=mode.rounds, target=mode.target, progress=progress)
    bare = results[0]
    rows = [result.summary(bare) for result in results]
    read = next(r for r in rows if r["group"] == "example" and r["operation"] == "read")
    return {
        "rows": rows,
        "read_us": read["us_per_call"],
        "target_us": INPROCESS_TARGET_US,
        "met": read["us_per_call"] < INPROCESS_TARGET_US,
    }


# -- the section ---------------------------------------------------------------------------


def run(mode: Mode, progress: Progress) -> dict[str, Any]:
    """The main job over HTTP (both backend sets, with the breakdown) and in-process."""
    server_name = default_server()
    result: dict[str, Any] = {
        "rows": [],
        "breakdown": [],
        "inprocess": {},
        "settings": {
            "workers": WORKERS,
            "default_server": server_name,
            "connections": mode.http_connections,
            "seconds": mode.service_seconds,
            "rounds": mode.service_rounds,
            "wrk_threads": 1,
            "write_limit": WRITE_LIMIT,
            "read_target": READ_TARGET,
        },
    }
    try:
        import pyservice_auth  # noqa: F401
        import pyservice_cache  # noqa: F401
        import pyservice_logging  # noqa: F401
        import pyservice_sqlalchemy  # noqa: F401
        import pyservice_throttle  # noqa: F401
    except ImportError as exc:
        progress.note(SECTION, f"skipped: the items example needs every plugin package ({exc})")
        return result
    with setup(shared=False, progress=progress) as done:
        result["inprocess"] = inprocess(mode, progress, done)
    if shutil.which("wrk") is None:
        progress.note(SECTION, "over HTTP skipped: wrk is not installed (apt-get install wrk)")
        return result
    groups = ["embedded"]
    why = shared_available()
    if why is None:
        groups.append("shared")
    else:
        progress.note(SECTION, f"the Redis + PostgreSQL cases are skipped: {why}")
    limits = limit_servers(server_name)
    try:
        for server in limits:
            server.start()
        for server in limits:
            server.wait_ready()
        for group in groups:
            with setup(shared=group == "shared", progress=progress) as done:
                breakdown_here = group == "embedded" or mode.service_shared_breakdown
                servers = items_servers(done, group, server_name, breakdown_here)
                try:
                    for server in servers:
                        server.start()
                    for server in servers:
                        server.wait_ready()
                    progress.step(SECTION, f"{group}: {len(servers)} items servers up, {WORKERS} workers each")
                    runs = measure(servers, limits, mode, progress, group)
                finally:
                    for server in servers:
                        server.stop()
                result["rows"] += http_rows(group, servers, limits, runs)
    finally:
        for server in limits:
            server.stop()
    result["breakdown"] = breakdown(result["rows"])
    return result
