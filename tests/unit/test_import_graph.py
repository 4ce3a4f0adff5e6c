"""The package's import structure, read from the source with ast (nothing is imported).

- no module under repropack/run/ imports repropack.backends.local or any module of it (the
  supervisor, cgroups, containment): the runner reaches backends only through the registry
  (repropack.backends.registry), and what is local-only lives in the local backend;
- the top-level imports of repropack/ form no circle;
- with function-level (lazy) imports counted too, the only circles are those that the
  imports listed in KNOWN_LAZY_CYCLES (each with its reason) close; an entry that is no
  longer part of a circle fails the test, so the list cannot go stale.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "repropack"

# (importing module, imported module) -> why it is still there
KNOWN_LAZY_CYCLES = {
    ("repropack.manifest", "repropack.manifest.loader"):
        "the package's __getattr__ loads the loader on first use, so `import repropack.manifest` stays cheap",
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _targets(node: ast.AST, module: str, path: Path) -> list[str]:
    """The repropack modules one import statement loads ('from a import b' may load a.b)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        names = [source] + [f"{source}.{alias.name}" for alias in node.names]
    else:
        return []
    found = []
    for name in names:
        while name and name not in MODULES:  # `import a.b.c` loads a, a.b and a.b.c
            name = name.rpartition(".")[0]
        if name and name != module:
            found.append(name)
    return found


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _top_level(tree: ast.Module) -> list[ast.AST]:
    """Statements run when the module is imported (inside if/try too, not under TYPE_CHECKING)."""
    out: list[ast.AST] = []
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if _is_type_checking(node) or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        out.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return out


@functools.cache
def _tree(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text(encoding="utf-8"))


@functools.cache
def _graph(lazy: bool) -> dict[str, frozenset[str]]:
    edges: dict[str, frozenset[str]] = {}
    for module, path in MODULES.items():
        tree = _tree(module)
        nodes = list(ast.walk(tree)) if lazy else _top_level(tree)
        if lazy:
            skipped = {id(n) for top in ast.walk(tree) if _is_type_checking(top) for n in ast.walk(top)}
            nodes = [n for n in nodes if id(n) not in skipped]
        edges[module] = frozenset(t for node in nodes for t in _targets(node, module, path))
    return edges


def graph(*, lazy: bool) -> dict[str, set[str]]:
    return {m: set(t) for m, t in _graph(lazy).items()}


def cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def test_the_graph_reader_sees_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_under_run_imports_the_local_backend():
    lazy = graph(lazy=True)
    local = "repropack.backends.local"
    offenders = sorted((m, t) for m, targets in lazy.items() if m == "repropack.run" or m.startswith("repropack.run.")
                       for t in targets if t == local or t.startswith(local + "."))
    assert offenders == [], "run/ reaches backends through repropack.backends.registry only"


def test_top_level_imports_have_no_circle():
    assert cycles(graph(lazy=False)) == []


def test_lazy_imports_close_no_circle_but_the_known_ones():
    lazy, top = graph(lazy=True), graph(lazy=False)
    for module, target in KNOWN_LAZY_CYCLES:
        assert target in lazy[module] and target not in top[module], (module, target, "is not a lazy import")
    without = {m: t - {target for mod, target in KNOWN_LAZY_CYCLES if mod == m} for m, t in lazy.items()}
    assert cycles(without) == [], "a lazy import closes an import circle"
    # the list cannot go stale: each entry is still part of a circle
    stale = [edge for edge in KNOWN_LAZY_CYCLES if not any(set(edge) <= c for c in cycles(lazy))]
    assert stale == [], "no longer closes a circle: remove it from KNOWN_LAZY_CYCLES"


def test_manifest_imports_nothing_from_run():
    """DAG expansion is load-time validation: manifest/ stands below run/ and never reaches up."""
    lazy = graph(lazy=True)
    assert sorted((m, t) for m, ts in lazy.items() if m.startswith("repropack.manifest")
                  for t in ts if t.startswith("repropack.run")) == []


@pytest.mark.parametrize("module", ["repropack.backends.registry", "repropack.docker_api"])
def test_low_level_modules_import_nothing_from_run_build_or_lock(module):
    everything = graph(lazy=True)[module]
    assert not {t for t in everything if t.split(".")[1] in ("run", "build", "lock", "cli")}


def test_one_docker_adapter_makes_every_client():
    """lock/, build/, the local backend and clean-up get their client from repropack.docker_api."""
    makers = ("docker.from_env", "DockerClient(", "APIClient(", "docker.client")
    offenders = sorted(str(path.relative_to(PACKAGE.parent)) for module, path in MODULES.items()
                       if module != "repropack.docker_api"
                       and any(m in path.read_text(encoding="utf-8") for m in makers))
    assert offenders == []
    users = {m for m, targets in graph(lazy=True).items() if "repropack.docker_api" in targets}
    assert {"repropack.lock.base_image", "repropack.build.engine", "repropack.backends.local.backend",
            "repropack.backends.local.supervisor"} <= users
