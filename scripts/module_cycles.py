#!/usr/bin/env python3
"""Fails when the crate's top-level modules import each other in a cycle.

Reads every `src/**/*.rs` (test code and comments left out), takes each
`crate::NAME` path as an edge from the file's top-level module to NAME, and
looks for strongly connected components with more than one module. Prints the
module graph with `--graph`. Python standard library only.

    python3 scripts/module_cycles.py            # exit 1 and the cycle on a cycle
    python3 scripts/module_cycles.py --graph    # who uses whom
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "src"
# `mod tests;` files and `#[cfg(test)] mod x { ... }` blocks are test code: a
# test may reach anything without making a dependency of the library.
TEST_FILE = re.compile(r"(^|_)tests?\.rs$")
CFG_TEST_BLOCK = re.compile(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{")
PATH = re.compile(r"\bcrate::(\w+)")
GROUP = re.compile(r"\bcrate::\{([^;]*)\}")


def strip_comments(text: str) -> str:
    out = []
    for line in text.splitlines():
        cut = line.find("//")
        # A `//` inside a string literal (URLs in test data) is rare in
        # non-test code; keep the line when the `//` follows a quote.
        if cut >= 0 and line[:cut].count('"') % 2 == 0:
            line = line[:cut]
        out.append(line)
    return "\n".join(out)


def strip_test_blocks(text: str) -> str:
    while True:
        m = CFG_TEST_BLOCK.search(text)
        if not m:
            return text
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        text = text[: m.start()] + text[i:]


def top_module(path: pathlib.Path) -> str | None:
    rel = path.relative_to(ROOT)
    if rel.parts[0] in ("main.rs", "lib.rs", "bin"):
        return None
    return rel.parts[0].removesuffix(".rs")


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.rs")):
        if TEST_FILE.search(path.name):
            continue
        module = top_module(path)
        if module is None:
            continue
        text = strip_test_blocks(strip_comments(path.read_text()))
        used = set(PATH.findall(text))
        for group in GROUP.findall(text):
            used |= {p.strip().split("::")[0] for p in group.split(",") if p.strip()}
        edges.setdefault(module, set()).update(u for u in used if u != module)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one member."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                found.append(sorted(scc))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def main() -> int:
    edges = graph()
    if "--graph" in sys.argv:
        for m in sorted(edges):
            print(f"{m:10} -> {', '.join(sorted(edges[m])) or '(nothing)'}")
    found = cycles(edges)
    for scc in found:
        pairs = [f"{a} -> {b}" for a in scc for b in sorted(edges[a]) if b in scc]
        print(f"module cycle: {', '.join(scc)} ({'; '.join(pairs)})")
    if not found and "--graph" not in sys.argv:
        print(f"no module cycle among {len(edges)} modules")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
