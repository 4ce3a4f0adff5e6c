"""Count the words of one text that are at least --min-length long; write `word<TAB>count` lines."""

import argparse
import collections
import re

parser = argparse.ArgumentParser()
parser.add_argument("--min-length", type=int, default=1)
parser.add_argument("text")
parser.add_argument("counts")
args = parser.parse_args()

with open(args.text, encoding="utf-8") as handle:
    words = re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", handle.read().lower())
counts = collections.Counter(w for w in words if len(w) >= args.min_length)
with open(args.counts, "w", encoding="utf-8") as out:
    for word, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        out.write(f"{word}\t{n}\n")
