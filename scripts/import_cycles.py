#!/usr/bin/env python3
"""Import circles between the files of a Rust crate.

Builds the file-level graph of `crate::`, `super::`, `self::` and child
module paths (in `use` items and inline in code, comments and strings
removed) and prints each strongly connected component of more than one
file, with the names that tie it together. `#[cfg(test)] mod tests` blocks are left out unless --tests is
given: a unit test may reach anywhere. A parent's `pub use` of its own
child is a facade and not counted. Exits 1 when a circle is found.

    scripts/import_cycles.py [--tests] [SRC ...]

SRC defaults to the `src` of every crate in the workspace (`services/*`,
`crates/*`, `loadgen`, `bench`); each is checked on its own.
"""

import re
import sys
from collections import defaultdict
from pathlib import Path

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip(text):
    """The code with comments, strings and chars blanked out, newlines kept
    (so line numbers still hold)."""
    out, i, n = [], 0, len(text)

    def skip_to(j):
        out.append("".join("\n" if c == "\n" else " " for c in text[i:j]))
        return j

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = skip_to(n if j < 0 else j)
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            i = skip_to(j)
        elif (m := re.compile(r'b?r(#*)"').match(text, i)) and not (
            i > 0 and re.match(r"[A-Za-z0-9_]", text[i - 1])
        ):
            end = text.find('"' + m.group(1), m.end())
            i = skip_to(n if end < 0 else end + 1 + len(m.group(1)))
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            i = skip_to(j + 1)
        elif m := re.compile(r"'(\\.[^']*|[^\\'])'").match(text, i):
            i = skip_to(m.end())
        else:
            out.append(c)
            i += 1
    return "".join(out)


def block_end(code, open_brace):
    """The index just past the `}` closing the `{` at `open_brace`."""
    depth, i = 1, open_brace + 1
    while i < len(code) and depth:
        depth += {"{": 1, "}": -1}.get(code[i], 0)
        i += 1
    return i


def drop_test_modules(code):
    """The code with `#[cfg(test)] mod name { ... }` blocks blanked out,
    newlines kept."""
    pattern = re.compile(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+" + IDENT + r"\s*\{")
    pos = 0
    while m := pattern.search(code, pos):
        end = block_end(code, m.end() - 1)
        gap = "".join("\n" if c == "\n" else " " for c in code[m.start():end])
        code = code[: m.start()] + gap + code[end:]
        pos = end
    return code


def inline_modules(code):
    """`(name, start, end)` of every `mod name { ... }` written inline."""
    blocks = []
    for m in re.finditer(r"\bmod\s+(" + IDENT + r")\s*\{", code):
        blocks.append((m.group(1), m.end(), block_end(code, m.end() - 1)))
    return blocks


def use_paths(tree, prefix=()):
    """Expand a use tree (`a::{b, c::d as e}`) into its paths."""
    tree = tree.strip()
    if not tree:
        return []
    if tree.endswith("}"):
        head, _, body = tree.partition("{")
        head = [p for p in head.strip().rstrip(":").split("::") if p]
        parts, depth, cur = [], 0, ""
        for ch in body[:-1]:
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
                continue
            depth += {"{": 1, "}": -1}.get(ch, 0)
            cur += ch
        parts.append(cur)
        result = []
        for part in parts:
            result += use_paths(part, prefix + tuple(head))
        return result
    tree = re.split(r"\s+as\s+", tree)[0]
    return [prefix + tuple(p for p in tree.split("::") if p)]


def module_of(path, root):
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts.pop()
    return tuple(parts)


WORKSPACE = Path(__file__).resolve().parent.parent


def crate_sources():
    """The `src` directory of every crate in the workspace."""
    roots = [WORKSPACE / "loadgen", WORKSPACE / "bench"]
    for group in ("services", "crates"):
        roots += sorted(p for p in (WORKSPACE / group).iterdir() if (p / "Cargo.toml").exists())
    return [r / "src" for r in roots if (r / "src").is_dir()]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    tests = "--tests" in sys.argv
    roots = [Path(a) for a in args] or crate_sources()
    found = 0
    for root in roots:
        found += check(root, tests)
    return 1 if found else 0


def check(root, tests):
    """Prints the circles among `root`'s files; returns how many."""
    files = sorted(p for p in root.rglob("*.rs") if p.name != "main.rs")
    modules = {module_of(p, root): p for p in files}

    def resolve(module, path):
        """The file a path (relative to `module`) lands in, and its first name."""
        first = path[0]
        if module + (first,) in modules:
            # A child module, named without `self::` (Rust 2018 paths).
            path = ("self",) + tuple(path)
            first = "self"
        if first == "crate":
            base, rest = (), path[1:]
        elif first in ("super", "self"):
            base, rest = list(module), list(path)
            while rest and rest[0] in ("super", "self"):
                if rest.pop(0) == "super":
                    base.pop()
            base = tuple(base)
        else:
            return None
        full = base + tuple(rest)
        for k in range(len(full), -1, -1):
            if full[:k] in modules:
                return modules[full[:k]], "::".join(full[k:k + 1]) or "(module)"
        return None

    edges = defaultdict(lambda: defaultdict(set))
    for path in files:
        module = module_of(path, root)
        code = strip(path.read_text())
        if not tests:
            code = drop_test_modules(code)
        blocks = inline_modules(code)

        def scope(offset):
            """The module at `offset`: the file's, inside any inline `mod x { }`."""
            return module + tuple(n for n, a, b in blocks if a <= offset < b)

        found = []
        for m in re.finditer(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]*);", code):
            here = scope(m.start())
            for p in use_paths(m.group(2)):
                hit = resolve(here, p)
                # A parent re-exporting its own child is its facade, not a use:
                # callers of the re-export depend on the child.
                if m.group(1) and hit and module_of(hit[0], root)[: len(module)] == module:
                    continue
                found.append((here, p))
        inline = re.sub(r"\buse\s+[^;]*;", lambda m: " " * len(m.group(0)), code)
        children = [m[-1] for m in modules if m[:-1] == module and m]
        roots = "|".join(["crate", "super", "self"] + children)
        for m in re.finditer(r"(?<![\w:])((?:" + roots + r")(?:::" + IDENT + r")+)", inline):
            found.append((scope(m.start()), tuple(m.group(1).split("::"))))
        for here, p in found:
            hit = resolve(here, p)
            if hit and hit[0] != path:
                edges[path][hit[0]].add(hit[1])

    # Tarjan's strongly connected components.
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            sccs.append(scc)

    sys.setrecursionlimit(10000)
    for f in files:
        if f not in index:
            visit(f)

    circles = [sorted(s) for s in sccs if len(s) > 1]
    try:
        name = root.resolve().relative_to(WORKSPACE)
    except ValueError:
        name = root
    for scc in circles:
        print(f"{name}: circle: " + ", ".join(str(f.relative_to(root)) for f in scc))
        for a in scc:
            for b in scc:
                if b in edges[a]:
                    names = ", ".join(sorted(edges[a][b]))
                    print(f"  {a.relative_to(root)} -> {b.relative_to(root)}: {names}")
    if not circles:
        print(f"{name}: no import circles among {len(files)} files")
    return len(circles)


if __name__ == "__main__":
    sys.exit(main())
