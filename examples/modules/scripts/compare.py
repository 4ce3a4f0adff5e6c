"""Put the tables of several module uses one after another under a title: `compare.py TITLE OUT TABLE...`.

Each table is headed by its folder, which is the module use's prefix (english/top.txt -> english).
"""

import pathlib
import sys

title, out_path, *tables = sys.argv[1:]
with open(out_path, "w", encoding="utf-8") as out:
    out.write(f"# {title}\n")
    for table in tables:
        path = pathlib.Path(table)
        out.write(f"\n## {path.parent.name}\n{path.read_text(encoding='utf-8')}")
