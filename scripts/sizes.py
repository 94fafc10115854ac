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

from import_cycles import IDENT, WORKSPACE, block_end, crate_sources, drop_test_modules, strip


def long_functions(path, limit):
    """`(name, first line, lines)` of each function over `limit` lines."""
    code = drop_test_modules(strip(path.read_text()))
    found = []
    for m in re.finditer(r"\bfn\s+(" + IDENT + r")", code):
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-file-lines", type=int, default=900)
    parser.add_argument("--max-fn-lines", type=int, default=120)
    parser.add_argument("roots", nargs="*", type=Path)
    args = parser.parse_args()
    roots = args.roots or [src.parent for src in crate_sources()]
    problems = 0
    files = 0
    for root in roots:
        for path in sorted(root.rglob("*.rs")):
            if "target" in path.parts:
                continue
            files += 1
            rel = path.resolve()
            if rel.is_relative_to(WORKSPACE):
                rel = rel.relative_to(WORKSPACE)
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
