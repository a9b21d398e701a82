"""Keyed pseudonyms: stable per project, unrelated across projects, keys never shown."""

from __future__ import annotations

import copy
import logging
import os
import pickle
import stat

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymise.pseudonymise import (
    MasterKey,
    MissingKeyError,
    ProjectKey,
    WeakKeyError,
    derive_project_key,
    hkdf_sha256,
    load_master_key,
    pseudonymise_series,
)

ENV = "PORTAL_PSEUDONYM_KEY"
MASTER = bytes(range(32))


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)


# --- derivation ---------------------------------------------------------------------------------


def test_hkdf_matches_rfc5869_test_cases():
    # RFC 5869 A.1 and A.3.
    okm = hkdf_sha256(
        bytes([0x0B] * 22), salt=bytes(range(13)), info=bytes(range(0xF0, 0xFA)), length=42
    )
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )
    okm = hkdf_sha256(bytes([0x0B] * 22), salt=b"", info=b"", length=42)
    assert okm.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


def test_pseudonyms_are_pinned_across_releases():
    # Changing these values would silently break every longitudinal extract.
    key = derive_project_key(MASTER, "alpha")
    assert key.hex() == "e8a846c624af583a7ec6a68a6f8e1d3c408ff24a9d31d132509af7f1574d55d3"
    assert pseudonymise_series(pl.Series(["1234567890"]), key).to_list() == [
        "f0ce135fcff9e76558a82ba3372fd501"
    ]


def test_project_names_are_normalised_but_not_case_folded():
    assert derive_project_key(MASTER, " alpha ") == derive_project_key(MASTER, "alpha")
    assert derive_project_key(MASTER, "Alpha") != derive_project_key(MASTER, "alpha")
    with pytest.raises(ValueError):
        derive_project_key(MASTER, "  ")
    with pytest.raises(WeakKeyError):
        derive_project_key(b"short", "alpha")


ids = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30)


@settings(max_examples=40, deadline=None)
@given(ids)
def test_pseudonyms_are_stable_within_a_project(values: list[str]):
    key = MasterKey(MASTER, "environment").project_key("alpha")
    first = pseudonymise_series(pl.Series("id", values), key, prefix="P-")
    again = pseudonymise_series(pl.Series("id", list(reversed(values))), key, prefix="P-")
    assert first.to_list() == list(reversed(again.to_list()))
    mapping = dict(zip(values, first.to_list(), strict=True))
    # One pseudonym per value, and different values get different pseudonyms.
    assert len(set(mapping.values())) == len(mapping)
    assert all(p.startswith("P-") and len(p) == 34 for p in first.to_list())


@settings(max_examples=40, deadline=None)
@given(ids)
def test_two_projects_cannot_be_joined_on_pseudonyms(values: list[str]):
    master = MasterKey(MASTER, "environment")
    a = pseudonymise_series(pl.Series(values), master.project_key("alpha"))
    b = pseudonymise_series(pl.Series(values), master.project_key("beta"))
    assert not set(a.to_list()) & set(b.to_list())


def test_nulls_stay_null_and_numbers_are_hashed_as_text():
    key = derive_project_key(MASTER, "alpha")
    out = pseudonymise_series(pl.Series("n", [1, None, 1]), key)
    assert out.to_list()[1] is None
    assert out[0] == out[2] == pseudonymise_series(pl.Series(["1"]), key)[0]
    assert out.name == "n"


def test_short_keys_are_refused():
    with pytest.raises(WeakKeyError):
        pseudonymise_series(pl.Series(["a"]), b"0123456789")
    with pytest.raises(WeakKeyError):
        MasterKey(b"x" * 16, "environment")


# --- loading the master key ---------------------------------------------------------------------


def test_production_without_a_key_refuses_clearly():
    with pytest.raises(MissingKeyError, match="never generates"):
        load_master_key(demo=False, environ={})


def test_production_reads_hex_or_base64_from_the_environment():
    key = load_master_key(demo=False, environ={ENV: MASTER.hex()})
    assert key.secret == MASTER and key.source == "environment"
    import base64

    text = base64.urlsafe_b64encode(MASTER).decode().rstrip("=")
    assert load_master_key(demo=False, environ={ENV: text}).secret == MASTER


def test_weak_or_garbled_keys_are_refused_without_echoing_them():
    with pytest.raises(WeakKeyError) as err:
        load_master_key(demo=False, environ={ENV: "c0ffee"})
    assert "c0ffee" not in str(err.value)
    with pytest.raises(WeakKeyError) as err:
        load_master_key(demo=False, environ={ENV: "not a key at all!"})
    assert "not a key" not in str(err.value)


def test_production_key_file_must_exist(tmp_path):
    with pytest.raises(MissingKeyError):
        load_master_key(demo=False, key_file=tmp_path / "absent.key", environ={})
    path = tmp_path / "portal.key"
    path.write_text(MASTER.hex() + "\n")
    path.chmod(0o600)
    key = load_master_key(demo=False, key_file=path, environ={})
    assert key.secret == MASTER and key.source == "file"


def test_demo_generates_a_private_key_file_once_and_says_so(tmp_path, caplog):
    path = tmp_path / "demo" / "pseudonym.key"
    with caplog.at_level(logging.WARNING):
        key = load_master_key(demo=True, key_file=path, environ={})
    assert key.source == "generated"
    assert path.exists() and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "demo mode" in caplog.text and str(path) in caplog.text
    assert key.secret.hex() not in caplog.text
    again = load_master_key(demo=True, key_file=path, environ={})
    assert again.secret == key.secret and again.source == "file"


def test_demo_prefers_the_environment(tmp_path):
    key = load_master_key(demo=True, key_file=tmp_path / "k.key", environ={ENV: MASTER.hex()})
    assert key.secret == MASTER
    assert not (tmp_path / "k.key").exists()


# --- keys never show themselves -----------------------------------------------------------------


def test_key_objects_never_show_or_serialise_the_secret():
    master = MasterKey(MASTER, "environment")
    project = master.project_key("alpha")
    assert isinstance(project, ProjectKey)
    for key in (master, project):
        shown = " ".join([repr(key), str(key), f"{key}", f"{key!r}"])
        secret = key.secret
        assert secret.hex() not in shown and secret.hex().upper() not in shown
        assert repr(secret) not in shown
        assert key.fingerprint in shown
        with pytest.raises(TypeError):
            pickle.dumps(key)
        with pytest.raises(TypeError):
            copy.deepcopy(key)
    assert MasterKey(MASTER, "file") == master


def test_no_key_or_identifier_reaches_the_logs(tmp_path, caplog, monkeypatch):
    identifiers = ["9434765919", "AB123456C", "Jane Doe"]
    with caplog.at_level(logging.DEBUG):
        master = load_master_key(demo=True, key_file=tmp_path / "k.key", environ={})
        project = master.project_key("alpha")
        out = pseudonymise_series(pl.Series(identifiers), project)
    text = caplog.text + " ".join(r.getMessage() for r in caplog.records)
    for secret in (master.secret, project.secret):
        assert secret.hex() not in text
    for value in identifiers + out.to_list():
        assert value not in text
