"""The module import graph of `linr_tf` and `serving`: acyclic, one-way.

Built statically with `ast` from every .py file of both packages. Every import
statement counts, including the ones inside functions (a lazy import still
ties the two modules together); only `if TYPE_CHECKING:` blocks are skipped.
An edge goes to the module an import names: `from a.b import c` -> `a.b.c` if
that is a module of the packages, else `a.b`; `import a.b.c` -> the longest
known prefix. The implicit "importing a submodule runs its package's
`__init__`" is not an edge (a package that imports its own submodules is not a
cycle).

    no cycles between modules (linr_tf and serving together)
    nothing under linr_tf/ imports serving (serving depends on linr_tf only)
    `import linr_tf.ingest` imports no source module and not redis
"""

import ast
import os
import subprocess
import sys
from typing import Dict, List, Set

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("linr_tf", "serving")


def _modules() -> Dict[str, str]:
  """Dotted module name -> file path, for every .py file of PACKAGES."""
  modules = {}
  for package in PACKAGES:
    top = os.path.join(ROOT, package)
    assert os.path.isfile(os.path.join(top, "__init__.py")), top
    for directory, dirs, files in os.walk(top):
      dirs[:] = sorted(d for d in dirs if d != "__pycache__")
      rel = os.path.relpath(directory, ROOT).split(os.sep)
      for name in sorted(files):
        if not name.endswith(".py"):
          continue
        parts = rel if name == "__init__.py" else rel + [name[:-3]]
        modules[".".join(parts)] = os.path.join(directory, name)
  return modules


def _is_type_checking(test: ast.expr) -> bool:
  return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or
          (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _import_nodes(tree: ast.AST):
  stack = [tree]
  while stack:
    node = stack.pop()
    if isinstance(node, ast.If) and _is_type_checking(node.test):
      stack.extend(node.orelse)
      continue
    if isinstance(node, (ast.Import, ast.ImportFrom)):
      yield node
    stack.extend(ast.iter_child_nodes(node))


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
  """The absolute module name of `from <node.module> import ...`."""
  base = node.module or ""
  if not node.level:
    return base
  parts = module.split(".")
  anchor = parts if is_package else parts[:-1]
  anchor = anchor[:len(anchor) - (node.level - 1)]
  return ".".join(anchor + ([base] if base else []))


def _imports(module: str, path: str):
  """(names as written, absolute; the module each import statement targets)."""
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), filename=path)
  is_package = os.path.basename(path) == "__init__.py"
  names, targets = set(), set()
  for node in _import_nodes(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        names.add(alias.name)
        targets.add(alias.name)
      continue
    base = _resolve(module, is_package, node)
    names.add(base)
    for alias in node.names:
      full = f"{base}.{alias.name}"
      names.add(full)
      # `from a.b import c`: the module a.b.c if there is one, else a.b.
      targets.add(full if alias.name != "*" else base)
  return names, targets


def _graph():
  """(modules, module -> modules it imports, module -> names it imports)."""
  modules = _modules()
  graph: Dict[str, Set[str]] = {}
  raw: Dict[str, Set[str]] = {}
  for module, path in modules.items():
    names, targets = _imports(module, path)
    raw[module] = names
    edges = set()
    for name in targets:
      parts = name.split(".")
      # The longest prefix that is a module of the packages (`import a.b.c`
      # -> a.b.c; `from a.b import name` -> a.b); none: outside the packages.
      target = next((".".join(parts[:i]) for i in range(len(parts), 0, -1)
                     if ".".join(parts[:i]) in modules), None)
      if target is not None and target != module:
        edges.add(target)
    graph[module] = edges
  return modules, graph, raw


def _find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
  """One cycle as [m0, m1, ..., m0], or [] if the graph is acyclic."""
  white, grey, black = 0, 1, 2
  color = {m: white for m in graph}
  stack: List[str] = []

  def visit(m):
    color[m] = grey
    stack.append(m)
    for n in sorted(graph[m]):
      if color[n] == grey:
        return stack[stack.index(n):] + [n]
      if color[n] == white:
        cycle = visit(n)
        if cycle:
          return cycle
    stack.pop()
    color[m] = black
    return []

  for m in sorted(graph):
    if color[m] == white:
      cycle = visit(m)
      if cycle:
        return cycle
  return []


def test_graph_sees_the_packages():
  modules, graph, _ = _graph()
  for m in ("linr_tf", "linr_tf.cli", "linr_tf.ingest", "linr_tf.ingest.source",
            "linr_tf.ingest.local_log", "linr_tf.ingest.redis_stream",
            "linr_tf.ingest.ingestor", "serving", "serving.server"):
    assert m in modules, m
  assert graph["linr_tf.ingest.local_log"] >= {"linr_tf.ingest.source"}
  assert graph["linr_tf.ingest.redis_stream"] >= {"linr_tf.ingest.source"}
  assert graph["linr_tf.ingest"] == {"linr_tf.ingest.local_log",
                                     "linr_tf.ingest.redis_stream"}


def test_find_cycle():
  assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) == []
  assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycles():
  _, graph, _ = _graph()
  cycle = _find_cycle(graph)
  assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_linr_tf_does_not_import_serving():
  _, _, raw = _graph()
  bad = sorted(f"{m} imports {n}" for m, names in raw.items()
               if m.split(".")[0] == "linr_tf"
               for n in names if n.split(".")[0] == "serving")
  assert not bad, "linr_tf must not depend on serving:\n  " + "\n  ".join(bad)


def test_import_ingest_needs_no_source_or_redis():
  code = ("import sys, linr_tf.ingest as i; assert callable(i.open_source); "
          "print(sorted(m for m in sys.modules if m == 'redis' or "
          "m.startswith(('redis.', 'linr_tf.ingest.'))))")
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                       capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=ROOT)).stdout
  assert out.strip() == "[]", out
