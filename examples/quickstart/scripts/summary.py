"""Summarise the per-text counts as one table (tabulate comes from the locked environment)."""

import pathlib
import sys

from tabulate import tabulate

rows = []
for path in sys.argv[1:]:
    lines = pathlib.Path(path).read_text(encoding="utf-8").splitlines()
    pairs = [line.split("\t") for line in lines]
    total = sum(int(n) for _, n in pairs)
    top = pairs[0][0] if pairs else ""
    rows.append([pathlib.Path(path).stem, len(pairs), total, top])
print(tabulate(rows, headers=["text", "distinct", "words", "most_common"], tablefmt="tsv"))
