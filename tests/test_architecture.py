"""The layering as a test: every import in service/ and jobs/ (read with ast, lazy ones included)
points down, the domain stays pure, and test modules share helpers, not each other.

    cli / jobs  ->  web  ->  care  ->  messaging  ->  models, db, config, ops' counters  ->  domain
"""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Top first. A module may import its own layer and the layers below it, never one above.
LAYERS = {
    "entry points": ("service", "service.cli", "jobs"),  # `service` itself: create_app
    "web": ("service.web",),
    # Application services; ops' read-only views (health, readiness, doctor) may read messaging.
    "care": ("service.care", "service.accounts", "service.ops.health", "service.ops.readiness",
             "service.ops.doctor", "service.ops.collector"),
    "messaging": ("service.messaging",),
    "base": ("service.models", "service.db", "service.config", "service.extensions",
             "service.ops.metrics", "service.ops.logs", "service.ops.heartbeat", "service.ops"),
    "domain": ("service.domain",),
}
RANK = {prefix: rank for rank, prefixes in enumerate(reversed(LAYERS.values())) for prefix in prefixes}

# Third-party libraries the pure domain may use (none yet): never a framework or the database.
PURE_LIBRARIES: frozenset[str] = frozenset()


def modules(*tops: str) -> dict[str, Path]:
    found = {}
    for top in tops:
        for path in (ROOT / top).rglob("*.py"):
            if "migrations" in path.parts:  # Alembic's scripts, run by Alembic alone
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


CODE = modules("service", "jobs")


def imports(path: Path, known: dict[str, Path] = CODE) -> set[str]:
    """What a module imports, as module names: `from service import db` is service.db."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: a relative import; the project spells them out"
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                names.add(submodule if submodule in known else node.module)
    return names


EDGES = {(name, target) for name, path in CODE.items() for target in imports(path)
         if target.split(".")[0] in ("service", "jobs")}


def rank(module: str) -> int:
    """The layer of the longest listed prefix (bare `service` is the package itself only)."""
    matches = [prefix for prefix in RANK if module == prefix
               or (prefix != "service" and module.startswith(prefix + "."))]
    assert matches, f"{module} is in no layer: add it to LAYERS"
    return RANK[max(matches, key=len)]


def test_every_import_points_down():
    upward = sorted(f"{importer} imports {target}" for importer, target in EDGES
                    if rank(target) > rank(importer))
    assert upward == []


def test_nothing_in_service_imports_jobs():
    """jobs only orchestrates: `aftercare worker` reaches it through the CLI plugin entry point."""
    assert sorted(f"{a} imports {b}" for a, b in EDGES
                  if a.split(".")[0] == "service" and b.split(".")[0] == "jobs") == []


@pytest.mark.parametrize("module", sorted(name for name in CODE if rank(name) == 0))
def test_the_domain_imports_only_the_standard_library_and_itself(module):
    """No Flask, SQLAlchemy or SQLModel, nor any other part of the service: pure functions."""
    foreign = sorted(name for name in imports(CODE[module])
                     if not (name == "service.domain" or name.startswith("service.domain."))
                     and name.split(".")[0] not in sys.stdlib_module_names | PURE_LIBRARIES)
    assert foreign == []


def test_no_test_module_imports_another():
    """Shared helpers live in tests/helpers.py, the fixtures and tests/fakes, never in a test."""
    tests = modules("tests", "bench")
    offenders = sorted(f"{name} imports {target}" for name, path in tests.items()
                       for target in imports(path, tests)
                       if target in tests and target.rsplit(".", 1)[-1].startswith("test_"))
    assert offenders == []
