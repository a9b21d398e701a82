"""The shared registry: code lists and labels, the dimension and measure registry, and
periods. Both the pipeline (`pipelines`) and the privacy core (`anonymise`) import it;
it imports neither (an import contract in pyproject.toml holds that), which is what
keeps the layers one-way: registry <- anonymise <- pipelines <- portal.

Pure definitions only: no I/O, no store, no keys.
"""
