#!/usr/bin/env python3
"""Files and functions too long to read as one thing.

A source file over MAX_FILE_LINES lines, or a function over MAX_FN_LINES
lines outside tests, is usually two things (docs/architecture.md, "House
rules"). This lists every one in the workspace's crates and exits 1 if
there is any. Tests are left out of the function rule: `tests/`
directories, `tests.rs` files and `#[cfg(test)] mod` blocks, where a long
table of cases reads best in one place.

    scripts/sizes.py [--max-file-lines N] [--max-fn-lines N] [ROOT ...]

ROOT defaults to every crate of the workspace (`services/*`, `crates/*`,
`loadgen`, `bench`).
"""

import argparse
import re
import sys
from pathlib import Path

WORKSPACE = Path(__file__).resolve().parent.parent
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def blank(text):
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


def test_ranges(code):
    """Character ranges of `#[cfg(test)] mod name { ... }` blocks."""
    pattern = re.compile(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+" + IDENT + r"\s*\{")
    return [(m.start(), block_end(code, m.end() - 1)) for m in pattern.finditer(code)]


def long_functions(path, limit):
    """`(name, first line, lines)` of each function over `limit` lines."""
    code = blank(path.read_text())
    tests = test_ranges(code)
    found = []
    for m in re.finditer(r"\bfn\s+(" + IDENT + r")", code):
        if any(a <= m.start() < b for a, b in tests):
            continue
        # The body: the first `{` after the signature, unless a `;` comes
        # first (a trait method without a body).
        j = m.end()
        depth = 0
        while j < len(code):
            ch = code[j]
            if ch in "(<[":
                depth += 1
            elif ch in ")>]":
                depth -= 1
            elif ch == ";" and depth <= 0:
                j = -1
                break
            elif ch == "{" and depth <= 0:
                break
            j += 1
        if j < 0 or j >= len(code):
            continue
        end = block_end(code, j)
        first = code.count("\n", 0, m.start()) + 1
        last = code.count("\n", 0, end) + 1
        if last - first + 1 > limit:
            found.append((m.group(1), first, last - first + 1))
    return found


def crate_roots():
    roots = [WORKSPACE / "loadgen", WORKSPACE / "bench"]
    for group in ("services", "crates"):
        roots += sorted(p for p in (WORKSPACE / group).iterdir() if (p / "Cargo.toml").exists())
    return roots


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-file-lines", type=int, default=900)
    parser.add_argument("--max-fn-lines", type=int, default=120)
    parser.add_argument("roots", nargs="*", type=Path)
    args = parser.parse_args()
    roots = args.roots or crate_roots()
    problems = 0
    files = 0
    for root in roots:
        for path in sorted(root.rglob("*.rs")):
            if "target" in path.parts:
                continue
            files += 1
            rel = path.resolve().relative_to(WORKSPACE)
            lines = path.read_text().count("\n")
            if lines > args.max_file_lines:
                print(f"{rel}: {lines} lines (at most {args.max_file_lines})")
                problems += 1
            if "tests" in rel.parts or path.name == "tests.rs":
                continue
            for name, first, length in long_functions(path, args.max_fn_lines):
                print(f"{rel}:{first}: fn {name} is {length} lines (at most {args.max_fn_lines})")
                problems += 1
    if problems:
        print(f"{problems} too long, among {files} files")
        return 1
    print(f"no file over {args.max_file_lines} lines, no function over {args.max_fn_lines}, among {files} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
