#!/usr/bin/env python3
"""The import graph of the `switchyard` crate (core/src), for the store re-cut's checks.

Prints, for each top-level module, the other top-level modules its files import; then the
top-level circles (top-level modules that reach each other through those imports); then every
import circle between files: a set of files (modules) that reach each other through `use`
paths and inline `crate::`/`super::`/relative paths. Paths are read as written: an import
through a re-export counts as an import of the module that re-exports. (A file's imports of its own ancestors (a child's `use super::Y`) are how Rust
modules are built and are left out; a parent's use of its children counts.) Test files (`*_tests.rs`, `tests.rs`, `*_props.rs`) are left out.

    python3 tools/module-imports.py [--edges]   # --edges: the imports inside each circle

`.ci/run` fails when it finds a circle.
"""

import os
import re
import sys
from collections import defaultdict

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "core", "src")


def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def is_test(path):
    name = os.path.basename(path)
    return name == "tests.rs" or name.endswith("_tests.rs") or name.endswith("_props.rs")


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def expand(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e]."""
    tree = tree.replace(" ", "").replace("\n", "")
    for i, ch in enumerate(tree):
        if ch == "{":
            prefix = tree[:i]
            if "}" not in tree:
                return []
            inner = tree[i + 1 : tree.rindex("}")]
            parts, level, start = [], 0, 0
            for j, c in enumerate(inner):
                if c == "{":
                    level += 1
                elif c == "}":
                    level -= 1
                elif c == "," and level == 0:
                    parts.append(inner[start:j])
                    start = j + 1
            parts.append(inner[start:])
            out = []
            for part in parts:
                if part:
                    out.extend(expand(prefix + part))
            return out
    return [tree.split(" as ")[0]]


def resolve(path, here, is_mod_file):
    """A path as written in module `here` -> an absolute module path (tuple), or None."""
    parts = [p for p in path.split("::") if p]
    if not parts:
        return None
    base = list(here)
    if parts[0] == "crate":
        base, parts = [], parts[1:]
    elif parts[0] in ("super", "self"):
        # In a non-mod file, `super` is the parent of the file's module.
        while parts and parts[0] in ("super", "self"):
            if parts[0] == "super":
                base = base[:-1]
            parts = parts[1:]
    elif tuple(base + parts[:1]) in MODULES:
        pass  # a child module, named relatively (`admin::router`)
    else:
        return None  # an external crate or a name in scope
    return tuple(base + parts)


MODULES = set()


def main():
    files = {}
    for directory, _, names in os.walk(ROOT):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(directory, name)
                if not is_test(path):
                    files[module_of(path)] = path
    modules = set(files)
    MODULES.update(modules)

    def owner(path):
        for n in range(len(path), 0, -1):
            if path[:n] in modules:
                return path[:n]
        return None

    edges = defaultdict(set)
    for module, path in files.items():
        text = strip_comments(open(path, encoding="utf-8").read())
        text = re.sub(r"#\[cfg\(test\)\]\s*mod\s+tests\s*\{.*", "", text, flags=re.S)
        written = []
        for use in re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", text, flags=re.M):
            written.extend(expand(use))
        written.extend(re.findall(r"(?<![\w:])(?:[a-z_]\w*)(?:::\w+)+", text))
        for target in written:
            absolute = resolve(target, module, path.endswith("mod.rs"))
            if absolute is None:
                continue
            to = owner(absolute)
            if to is None or to == module:
                continue
            # A child reaching up to its ancestors (`use super::…`) is how the module tree
            # is built, not a circle; a parent using its children is an import like others.
            if to == module[: len(to)]:
                continue
            edges[module].add(to)

    top = defaultdict(set)
    for module, targets in edges.items():
        for to in targets:
            if module and to and module[0] != to[0]:
                top[module[0]].add(to[0])
    print("Top-level modules and the top-level modules they import:")
    for name in sorted({m[0] for m in modules if m}):
        print(f"  {name}: {', '.join(sorted(top[name])) or '-'}")

    sccs = circles(sorted(modules), edges)
    top_sccs = circles(sorted({m[0] for m in modules if m}), top)
    show = lambda component: ", ".join("::".join(m) or "crate" for m in component)

    # A circle of top-level modules is two subtrees that lean on each other.
    print(f"\nTop-level import circles: {len(top_sccs)}")
    for component in top_sccs:
        print(f"  {', '.join(component)}")
        if "--edges" in sys.argv:
            members = set(component)
            for module, targets in sorted(edges.items()):
                for to in sorted(targets):
                    if module and to and module[0] != to[0] and module[0] in members and to[0] in members:
                        print(f"    {'::'.join(module)} -> {'::'.join(to)}")

    print(f"\nImport circles: {len(sccs)}")
    for component in sccs:
        print(f"  {len(component)} modules: {show(component)}")
        if "--edges" in sys.argv:
            members = set(component)
            for a in component:
                for b in sorted(edges.get(a, ())):
                    if b in members:
                        print(f"    {'::'.join(a)} -> {'::'.join(b)}")


def circles(nodes, edges):
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            connect(v)
    return found


if __name__ == "__main__":
    main()
