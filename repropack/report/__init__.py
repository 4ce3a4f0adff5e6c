"""``repropack report``: one self-contained HTML file (and JSON) describing a run.

:func:`collect` reads the journal and run directories into a :class:`Report`;
:func:`render_html` turns it into a single HTML page with inline CSS, JS and SVG.
"""

from repropack.report.collect import collect
from repropack.report.html import render_html
from repropack.report.model import Report, to_record

__all__ = ["Report", "collect", "render_html", "to_record"]
