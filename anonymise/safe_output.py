"""Downloads that a spreadsheet cannot turn into code.

A cell that starts with '=', '+', '-', '@', a tab or a carriage return is run
as a formula by Excel and LibreOffice (CSV injection). Every text cell that
leaves the portal as a file passes through `safe_frame`, which prefixes such
cells with an apostrophe (OWASP's advice), so the text is shown, not run.
Numbers are left alone: a negative number is not text.
"""

from __future__ import annotations

import polars as pl

FORMULA_START = r"^[=+\-@\t\r]"


def safe_frame(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(
        pl.when(pl.col(c).str.contains(FORMULA_START))
        .then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c))
        .alias(c)
        for c, dtype in df.schema.items()
        if dtype == pl.Utf8
    )
