"""Zone A -> zone B pipeline stages: contracts, ingest, link, derive, orchestration."""
