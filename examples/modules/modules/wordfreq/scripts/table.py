"""The --top most frequent words of a counts file, as a plain-text table (tabulate, from the module's environment)."""

import argparse

from tabulate import tabulate

parser = argparse.ArgumentParser()
parser.add_argument("--top", type=int, default=10)
parser.add_argument("counts")
parser.add_argument("table")
args = parser.parse_args()

rows = []
with open(args.counts, encoding="utf-8") as handle:
    for line in handle:
        word, n = line.rstrip("\n").split("\t")
        rows.append((word, int(n)))
with open(args.table, "w", encoding="utf-8") as out:
    out.write(tabulate(rows[: args.top], headers=["word", "count"], tablefmt="simple") + "\n")
