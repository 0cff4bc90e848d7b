"""The import rule of docs/architecture.md, checked on the source: imports point down.

Every module of relay/ belongs to one layer. A module imports from its own layer or the
layers below it, never above; channels do not import each other except along the few
edges listed (each with its reason); the outbox imports nothing above itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Top to bottom. A prefix names a module and everything under it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("entry", ("relay.__main__", "relay.cli", "relay.app", "relay.outcomes")),
    (
        "channels",
        (
            "relay.intake",
            "relay.web",
            "relay.schedule",
            "relay.process",
            "relay.by_email",
            "relay.lists",
            "relay.bounces",
            "relay.own_mail",
            "relay.participant_mail",
        ),
    ),
    (
        "core",
        (
            "relay.participants",
            "relay.guardians",
            "relay.letters",
            "relay.notices",
            "relay.rights",
            "relay.reports",
            "relay.closing",
            "relay.quiet",
            "relay.welcomes",
        ),
    ),
    ("outbox", ("relay.outbox",)),
    (
        "base",
        (
            "relay.context",
            "relay.guard",
            "relay.compose",
            "relay.wording",
            "relay.store",
            "relay.spool",
            "relay.route",
            "relay.addresses",
            "relay.mail_reading",
            "relay.authresults",
            "relay.authentication",
            "relay.decisions",
            "relay.consent",
            "relay.matching",
            "relay.commands",
            "relay.verp",
            "relay.dkim_signing",
            "relay.logfile",
            "relay.privileges",
            "relay.backup",
        ),
    ),
    (
        "pure",
        (
            "relay.scrub",
            "relay.screen",
            "relay.config",
            "relay.config_web",
            "relay.errors",
            "relay.replies",
            "relay.faults",
            "relay.dsn",
            "relay.consent",
        ),
    ),
)

# Channels that form one channel: accepted mail is dispatched to the handler of its address.
CHANNEL_GROUPS = (
    (
        "relay.process",
        "relay.by_email",
        "relay.lists",
        "relay.bounces",
        "relay.own_mail",
        "relay.participant_mail",
    ),
)

# Edges between channels, each with its reason.
CHANNEL_EDGES = {
    ("relay.lists", "relay.schedule"): "a newsletter post is kept for the next digest",
    ("relay.web", "relay.schedule"): "the program page shows the next topic and digest",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _owner(name: str) -> tuple[int, str]:
    """(layer index, the prefix that claims the module)."""
    for index, (_layer, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + "."):
                return index, prefix
    raise AssertionError(f"{name} is in no layer of tests/test_architecture.py")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("relay")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the module's own package
                package = _module_name(path).split(".")
                if path.name != "__init__.py":
                    package.pop()
                base = ".".join(package[: len(package) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            if not base.startswith("relay"):
                continue
            for alias in node.names:  # `from relay import letters` imports relay.letters
                candidate = f"{base}.{alias.name}"
                module = ROOT / Path(*candidate.split("."))
                is_module = module.with_suffix(".py").exists() or module.is_dir()
                found.add(candidate if is_module else base)
    found.discard("relay")
    return found


def _group(prefix: str) -> str:
    for group in CHANNEL_GROUPS:
        if prefix in group:
            return group[0]
    return prefix


def _violations() -> list[str]:
    problems = []
    for path in sorted((ROOT / "relay").rglob("*.py")):
        name = _module_name(path)
        if name == "relay":
            continue  # the package's empty __init__
        layer, prefix = _owner(name)
        for imported in sorted(_imports(path)):
            their_layer, their_prefix = _owner(imported)
            if their_layer < layer:
                problems.append(
                    f"{name} ({LAYERS[layer][0]}) imports {imported} ({LAYERS[their_layer][0]})"
                )
            elif (
                their_layer == layer == 1
                and _group(prefix) != _group(their_prefix)
                and (prefix, their_prefix) not in CHANNEL_EDGES
            ):
                problems.append(f"channel {name} imports channel {imported}")
    return problems


def test_every_import_points_down() -> None:
    assert _violations() == []


def test_the_rule_sees_an_import_that_points_up(tmp_path: Path) -> None:
    """The checker itself: an upward import in a module is reported."""
    assert _owner("relay.letters.holding")[0] < _owner("relay.store.records")[0]
    sample = ROOT / "relay" / "store" / "records.py"
    assert "relay.screen" in _imports(sample)
    upward = tmp_path / "upward.py"
    upward.write_text("from relay import letters\nfrom relay.web.app import build_app\n")
    assert {"relay.letters", "relay.web.app"} <= _imports(upward)


def test_architecture_page_names_every_package() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    for _layer, prefixes in LAYERS:
        for prefix in prefixes:
            if prefix != "relay.__main__":
                assert f"`{prefix.removeprefix('relay.')}" in page, prefix
