"""Re-export of `registry.periods` (the one periods module), kept so that modules other
branches edit (portal/web, the returns) keep their import lines; remove once they import
`registry.periods` directly."""

from registry.periods import (  # noqa: F401
    COARSEST_FIRST,
    FINEST_FIRST,
    FORMATS,
    TIME_DIMENSIONS,
    describe,
    describe_span,
    financial_year,
    period_bounds,
    period_end,
    period_exprs,
    period_start,
)
