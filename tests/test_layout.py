"""The package's rooms and the way they lean on each other: every import runs down the list below (or
stays in its own room), and no two modules import each other, directly or round about."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.fakes import ROOT

# Lowest first: a room may import from its own and from those above it in this list, never below.
LAYERS = (
    ("bot.http", "bot.batches", "bot.loop"),  # HTTP, batching and the event loop, for anyone
    ("bot.store", "bot.mailpartner"),  # the database; MailPartner
    ("bot.requests",),  # what a request is: grammar, ticket, the names of its ways in and refusals
    ("bot.audit",),  # the audit trail, metrics, logs
    ("bot.words",),  # words and rendering
    ("bot.settings",),
    ("bot.outbound",),  # the way out to Slack
    ("bot.cancels",),  # the cancels: engine, workflow runs, recovery
    ("bot.inbound",),  # the ways in
    ("bot.app",),  # assembly
    ("bot.ops",),  # serving, check
    ("bot.console",),  # the console and its stand-in Slack
    ("bot.cli", "bot.__main__", "bot"),  # the entry points and the public surface
)


def layer_of(module: str) -> int:
    best = max(
        (
            (i, name)
            for i, names in enumerate(LAYERS)
            for name in names
            if module == name or module.startswith(name + ".")
        ),
        key=lambda found: len(found[1]),
    )
    return best[0]


def modules() -> dict[str, Path]:
    found = {}
    for path in (ROOT / "bot").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The bot's modules `name` imports, at any level (type-checking and function-level imports count)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if target in known else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in known and m != name}


def test_every_module_is_in_a_room() -> None:
    for name in modules():
        assert layer_of(name) >= 0, name


def test_no_import_runs_upward() -> None:
    known = modules()
    upward = [
        f"{name} imports {target}"
        for name, path in known.items()
        for target in imports_of(name, path, set(known))
        if layer_of(target) > layer_of(name)
    ]
    assert upward == []


def test_no_two_modules_import_each_other() -> None:
    known = modules()
    graph = {name: imports_of(name, path, set(known)) for name, path in known.items()}
    # A package's __init__ importing its own modules is how a package shows its surface, not a cycle.
    graph = {n: {t for t in ts if not n or not t.startswith(n + ".")} for n, ts in graph.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append([*trail[trail.index(target) :], target] if target in trail else [node, target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []
