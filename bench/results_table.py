"""Benchmarks write their own tables: a markdown block between marker comments in a results
file (``<!-- BEGIN name -->`` ... ``<!-- END name -->``) is replaced by what the benchmark
measured, so nobody pastes (or forgets to paste) a table by hand.

``tests/unit/test_bench_tables.py`` checks that every ``bench/RESULTS*.md`` block is filled and
that every benchmark script names the blocks it writes (its ``TABLES``).
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

BEGIN, END = "<!-- BEGIN {} -->", "<!-- END {} -->"


def block_pattern(name: str) -> re.Pattern[str]:
    return re.compile(re.escape(BEGIN.format(name)) + r"\n(.*?)" + re.escape(END.format(name)), re.S)


def write_block(path: str | os.PathLike[str], name: str, text: str) -> Path:
    """Replace the block ``name`` of the markdown file ``path`` by ``text`` (atomically); a file
    or block that does not exist yet is created at the end."""
    path = Path(path)
    body = text.strip("\n") + "\n"
    if not body.strip():
        raise ValueError(f"{path}: refusing to write an empty '{name}' table")
    old = path.read_text() if path.exists() else ""
    # blank lines around the table: a comment line next to a table row would end the table
    block = f"{BEGIN.format(name)}\n\n{body}\n{END.format(name)}"
    new, n = block_pattern(name).subn(lambda _: block, old)
    if n == 0:
        new = old.rstrip("\n") + ("\n\n" if old.strip() else "") + block + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(new)
    os.replace(tmp, path)
    print(f"table '{name}' written to {path}")
    return path


def read_block(path: str | os.PathLike[str], name: str) -> str | None:
    m = block_pattern(name).search(Path(path).read_text())
    return None if m is None else m.group(1).strip("\n")
