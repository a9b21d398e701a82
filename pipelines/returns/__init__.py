"""DfE statutory returns as sources: the CIN census (XML) and the SSDA903 return (CSV).

Every council's children's social care system already produces these two returns, so
they are the first real files a council can give the portal. This package reads them,
validates them against DfE's rules for their collection year (reporting each failure
with DfE's rule code), and turns them into ingest results like any other source's:

- `tables`: the returns' tables (DfE's names and fields) and the source contract each
  becomes (one row per CINdetails, assessment, CIN plan, section 47 enquiry and child
  protection plan; one row per row of each 903 table), shared with the generator;
- `years`: what differs between collection years (code lists, element names), as data;
- `rules`: the DfE rules implemented, each with its code, message and the years it
  applies to;
- `cin`: the CIN census XML reader and validator;
- `ssda903`: the 903 reader and validator;
- `check`: applies a table's rules, then ingest's contract validation;
- `ingest`: every return under `<raw>/returns/`, as ingest results, with the
  file-level problems that stop a run (called by `pipelines.ingest.ingest_all`).

See docs/returns.md.
"""

from __future__ import annotations
