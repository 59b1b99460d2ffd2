"""How much the suite measures in each mode: smoke, quick and full."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    """The knobs of one run; every section reads its own."""

    name: str
    # Many short rounds rather than a few long ones: a shared machine's speed
    # swings by half within a tenth of a second, and short rounds spread every
    # case over the whole run, so the swings hit all cases alike.
    rounds: int  # interleaved rounds of the in-process, scaling and client sections
    target: float  # seconds one case's batch takes in a round
    hook_counts: tuple[int, ...]  # pass-through hooks per scope in the dispatch table
    hook_sweep: tuple[int, ...]  # the number-of-hooks sweep
    payload_sizes: tuple[int, ...]  # request bodies, bytes
    operation_counts: tuple[int, ...]  # operations declared
    http_apps: tuple[str, ...]
    http_servers: tuple[str, ...]
    http_seconds: float  # one wrk run
    http_warmup: float  # wrk seconds per server before measuring (0: none)
    http_rounds: int
    http_connections: int
    client_target: float
    memory_calls: int  # calls before measuring what stayed allocated
    instruction_cases: tuple[str, ...]  # suite.instructions.CASES counted under callgrind
    instruction_calls: int  # calls per counted process
    # The section "a real service" (suite/service.py); it reuses http_connections and http_warmup.
    service_seconds: float  # one wrk run
    service_rounds: int
    service_shared_breakdown: bool  # each plugin off in turn on Redis + PostgreSQL too (else: every plugin on only)


#: Each built-in plugin and its work done directly (suite/direct_work.py), counted under callgrind.
PLUGIN_INSTRUCTION_CASES = tuple(
    f"{kind}:{name}" for name in ("logging", "auth", "throttle", "cache", "sqlalchemy") for kind in ("plugin", "direct")
)

SMOKE = Mode(
    name="smoke",
    rounds=1,
    target=0.002,
    hook_counts=(1, 5, 20),
    hook_sweep=(0, 1, 20),
    payload_sizes=(100, 1_000_000),
    operation_counts=(10, 1_000),
    http_apps=("bare", "pyservice", "falcon", "flask"),
    http_servers=("pyservice", "gunicorn", "granian"),
    http_seconds=1,
    http_warmup=0,
    http_rounds=1,
    http_connections=8,
    client_target=0.02,
    memory_calls=200,
    # Each process takes 15-60 s under valgrind here: the plugins beside their direct work are
    # counted in quick and full runs only (the in-process section runs every pair once).
    instruction_cases=("bare", "core"),
    instruction_calls=200,
    service_seconds=1,
    service_rounds=1,
    service_shared_breakdown=False,
)

QUICK = Mode(
    name="quick",
    rounds=9,
    target=0.01,
    hook_counts=(1, 5, 20),
    hook_sweep=(0, 1, 5, 20),
    payload_sizes=(100, 10_000, 1_000_000),
    operation_counts=(10, 1_000, 10_000),
    http_apps=("bare", "pyservice"),
    http_servers=("pyservice", "gunicorn", "granian"),
    http_seconds=2,
    http_warmup=1,
    http_rounds=1,
    http_connections=8,
    client_target=0.03,
    memory_calls=2_000,
    instruction_cases=("bare", "core", "request_hook", "operation_hook", *PLUGIN_INSTRUCTION_CASES),
    instruction_calls=2_000,
    service_seconds=2,
    service_rounds=1,
    service_shared_breakdown=True,
)

FULL = Mode(
    name="full",
    rounds=45,
    target=0.04,
    hook_counts=(1, 5, 20),
    hook_sweep=(0, 1, 2, 5, 10, 20, 30, 40, 50, 75),
    payload_sizes=(100, 1_000, 10_000, 100_000, 1_000_000),
    operation_counts=(10, 100, 1_000, 10_000),
    http_apps=("bare", "pyservice", "falcon", "flask"),
    http_servers=("pyservice", "gunicorn", "granian"),
    http_seconds=6,
    http_warmup=2,
    http_rounds=5,
    http_connections=8,
    client_target=0.1,
    memory_calls=20_000,
    instruction_cases=("bare", "core", "request_hook", "operation_hook", "falcon", "flask", *PLUGIN_INSTRUCTION_CASES),
    instruction_calls=5_000,
    service_seconds=4,
    service_rounds=3,
    service_shared_breakdown=True,
)

MODES = {mode.name: mode for mode in (SMOKE, QUICK, FULL)}
