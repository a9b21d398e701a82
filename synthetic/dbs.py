"""A simulated NHS Demographics Batch Service (DBS) trace for the synthetic county.

Councils trace NHS numbers for their records by sending the NHS Spine a batch
file of demographics (surname, forename, date of birth, sex, postcode) and
receiving a response file with the NHS number of each record the Personal
Demographics Service (PDS) matched uniquely. This is how Supporting Families
data matching links health data, which carries nothing but the NHS number.

Here the synthetic county's own register of people stands in for the PDS, and
the rules are deliberately strict, as the Spine's are: the record's
standardised surname, date of birth and sex must match exactly one person on
the register, and so must either the forename or (with the same initial) the
postcode. Records with a typo in the surname, a transposed date of birth or a
nickname and a stale address are not traced. The response is public-service
reference data for the pipeline (like the postcode lookup): it holds no truth
label, only the NHS numbers the simulated Spine would have returned.
"""

from __future__ import annotations

import polars as pl

from pipelines.ingest import name_expr

RESPONSE_FILE = "dbs_trace_response.csv"


def simulate_trace(requests: pl.DataFrame, register: pl.DataFrame) -> pl.DataFrame:
    """requests: source, record_id, forename, surname, dob (Date), sex, postcode (standardised).
    register: nhs_number, forename, surname, dob (Date), sex, postcodes (list of every postcode
    the person has lived at). Returns source, record_id, result, nhs_number."""
    reg = register.with_columns(
        name_expr("forename").alias("r_forename"), name_expr("surname").alias("surname")
    ).select("nhs_number", "r_forename", "surname", "dob", "sex", "postcodes")
    cand = requests.join(reg, on=["surname", "dob", "sex"], how="left")
    forename_ok = pl.col("forename") == pl.col("r_forename")
    postcode_ok = (pl.col("forename").str.slice(0, 1) == pl.col("r_forename").str.slice(0, 1)) & (
        pl.col("postcodes").list.contains(pl.col("postcode")).fill_null(False)
    )
    cand = cand.with_columns(
        (pl.col("nhs_number").is_not_null() & (forename_ok | postcode_ok)).alias("ok")
    )
    per = cand.group_by("source", "record_id").agg(
        pl.col("ok").sum().alias("matches"),
        pl.col("nhs_number").filter(pl.col("ok")).first().alias("nhs_number"),
    )
    return (
        per.with_columns(
            pl.when(pl.col("matches") == 1)
            .then(pl.lit("TRACED"))
            .when(pl.col("matches") == 0)
            .then(pl.lit("NO_MATCH"))
            .otherwise(pl.lit("MULTIPLE_MATCHES"))
            .alias("result"),
        )
        .with_columns(
            pl.when(pl.col("matches") == 1).then(pl.col("nhs_number")).alias("nhs_number")
        )
        .select("source", "record_id", "result", "nhs_number")
        .sort("source", "record_id")
    )
