"""Plain-text tables for the terminal: the summary, and the command line tool's tables."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

__all__ = ["text_table"]


_NUMBER: Final = re.compile(r"[-+]?[0-9][0-9.,]*%?")


def text_table(rows: Sequence[Mapping[str, object]]) -> str:
    """``rows`` as a plain-text table under their keys (the first row's, in order): a column of
    numbers aligned right, any other left, two spaces between columns, no trailing blanks."""
    if not rows:
        return ""
    headers = list(rows[0])
    cells = [[str(row.get(header, "")) for header in headers] for row in rows]
    widths, numeric = [], []
    for column, header in enumerate(headers):
        values = [line[column] for line in cells]
        widths.append(max(len(header), *(len(value) for value in values)))
        numeric.append(all(_NUMBER.fullmatch(v) for v in values if v) and any(values))
    lines = []
    for line in [headers, *cells]:
        padded = (
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(line, widths, numeric, strict=True)
        )
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)
