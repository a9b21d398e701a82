"""Sign-in that holds, on SQLite and PostgreSQL: lockout per account kept in the store (across
sessions, threads and processes), back-off, unknown names treated the same, argon2 with
legacy hashes upgraded, every sign-in event audited (never a password), and demo mode
refused under a production configuration by the service and by `portal serve`."""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pipelines.store import Store
from pipelines.store_auth import auth_password_upgrades
from portal.cli import app as cli
from portal.service import accounts, signin
from portal.service.config import ConfigError, DemoRefusedError, load_config
from portal.service.signin import BadCredentials, LockedOut, SignIn
from tests.service_fixtures import accounts_file, cheap_hasher, service_config

PASSWORD = "correct horse battery staple"


def _scrypt(password: str) -> str:
    salt = b"0123456789abcdef"
    dk = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${2**14}$8$1${b64(salt).decode()}${b64(dk).decode()}"


def _pbkdf2(password: str) -> str:
    salt = b"fedcba9876543210"
    dk = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 1000)
    b64 = base64.b64encode
    return f"pbkdf2_sha256$1000${b64(salt).decode()}${b64(dk).decode()}"


def _signin(db_url: str, tmp_path: Path, users: dict[str, tuple[str, list[str]]] | None = None,
            **overrides) -> SignIn:  # fmt: skip
    cheap_hasher()
    users = users or {"jo": (accounts.hash_password(PASSWORD), ["planner"])}
    path = accounts_file(tmp_path / "accounts.toml", users)
    config = service_config(db_url, env={"PORTAL_ACCOUNTS_FILE": str(path)}, **overrides)
    return SignIn(Store(db_url), config)


def _audit(store: Store, action: str) -> pl.DataFrame:
    return store.read_audit(action=action)


# --- lockout -----------------------------------------------------------------------------------


def test_lockout_across_sessions_then_back_off(db_url, tmp_path, monkeypatch):
    """Five failures lock the account for 60 s (the right password is refused too), the next
    failure after that locks for 120 s, and so on up to an hour."""
    s = _signin(db_url, tmp_path)
    now = datetime.now(UTC)
    monkeypatch.setattr(signin, "_now", lambda: now)
    for attempt in range(1, 6):
        with pytest.raises(BadCredentials) as failed:
            s.local("jo", "wrong", client="portal")
        assert failed.value.locked_for == (60 if attempt == 5 else 0)
    with pytest.raises(LockedOut) as locked:
        s.local("jo", PASSWORD, client="portal")
    assert 59 <= locked.value.retry_after <= 60
    # A new service process (new SignIn, new engine) sees the same lock: it is in the store.
    other = SignIn(Store(db_url), s.config)
    with pytest.raises(LockedOut):
        other.local("jo", PASSWORD, client="api")
    # After the minute, one more wrong password doubles the lock.
    now += timedelta(seconds=61)
    with pytest.raises(BadCredentials) as failed:
        s.local("jo", "wrong", client="portal")
    assert failed.value.locked_for == 120
    for expected in (240, 480, 960, 1920, 3600, 3600):
        now += timedelta(seconds=3601)
        with pytest.raises(BadCredentials) as failed:
            s.local("jo", "wrong", client="portal")
        assert failed.value.locked_for == expected
    # Once the lock has passed, the right password works and clears the count.
    now += timedelta(seconds=3601)
    token, user = s.local("jo", PASSWORD, client="portal")
    assert user.user_id == "jo" and token
    now += timedelta(seconds=1)
    for _ in range(4):
        with pytest.raises(BadCredentials) as failed:
            s.local("jo", "wrong", client="portal")
        assert failed.value.locked_for == 0


def test_wrong_passwords_from_one_address_do_not_lock_the_user_out_elsewhere(
    db_url, tmp_path, monkeypatch
):
    """Someone who knows a colleague's user name types wrong passwords from their own
    machine: that machine is locked out of the account, the colleague is not."""
    s = _signin(db_url, tmp_path)
    now = datetime.now(UTC)
    monkeypatch.setattr(signin, "_now", lambda: now)
    for attempt in range(1, 6):
        with pytest.raises(BadCredentials) as failed:
            s.local("jo", "wrong", client="portal", address="10.0.0.66")
        assert failed.value.locked_for == (60 if attempt == 5 else 0)
    with pytest.raises(LockedOut):
        s.local("jo", PASSWORD, client="portal", address="10.0.0.66")
    # The account's owner, at their own desk, signs in; so does a new service process.
    _, user = s.local("jo", PASSWORD, client="portal", address="10.0.0.7")
    assert user.user_id == "jo"
    _, user = SignIn(Store(db_url), s.config).local(
        "jo", PASSWORD, client="portal", address="10.0.0.7"
    )
    assert user.user_id == "jo"
    # The locked machine stays locked (its refusals did not reach the account's count).
    with pytest.raises(LockedOut):
        s.local("jo", PASSWORD, client="portal", address="10.0.0.66")
    locks = _audit(s.store, "account_locked")
    assert locks.height == 1
    detail = json.loads(locks["detail"][0])
    assert detail["scope"] == "address" and detail["address"] == "10.0.0.66"


def test_guesses_spread_over_many_addresses_lock_the_account_everywhere(
    db_url, tmp_path, monkeypatch
):
    """Four wrong passwords from each of many machines never trip one address's lock, but
    after ten times the per-address limit in all the account is locked for every address,
    with the same back-off, until the lock passes and a sign-in succeeds."""
    s = _signin(db_url, tmp_path)
    now = datetime.now(UTC)
    monkeypatch.setattr(signin, "_now", lambda: now)
    limit = s.config.max_failures * signin.ACCOUNT_FAILURE_FACTOR
    outcomes = []
    for i in range(limit):
        with pytest.raises(BadCredentials) as failed:
            s.local("jo", "wrong", client="api", address=f"198.51.100.{i // 4}")
        outcomes.append(failed.value.locked_for)
    assert outcomes[:-1] == [0] * (limit - 1) and outcomes[-1] == 60
    with pytest.raises(LockedOut):
        s.local("jo", PASSWORD, client="portal", address="10.0.0.7")
    detail = json.loads(_audit(s.store, "account_locked")["detail"][0])
    assert detail["scope"] == "account" and detail["failures"] == limit
    # Once the lock has passed the owner signs in, which clears the account's count.
    now += timedelta(seconds=61)
    s.local("jo", PASSWORD, client="portal", address="10.0.0.7")
    for i in range(4):
        with pytest.raises(BadCredentials) as failed:
            s.local("jo", "wrong", client="api", address=f"203.0.113.{i}")
        assert failed.value.locked_for == 0


def test_parallel_guesses_cannot_slip_past_the_lock(db_url, tmp_path):
    """The issue's attack: many wrong passwords at once from several sessions. No more than
    five are ever checked, and the right password is refused afterwards."""
    s = _signin(db_url, tmp_path)
    checked = []
    real = accounts.verify_password

    def counting(password, stored):
        checked.append(password)
        return real(password, stored)

    accounts_verify = accounts.verify_password
    accounts.verify_password = counting
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            outcomes = list(pool.map(lambda _: _attempt(s, "wrong"), range(18)))
    finally:
        accounts.verify_password = accounts_verify
    assert outcomes.count("bad") == 5, outcomes
    assert outcomes.count("locked") == 13
    assert len(checked) == 5
    assert _attempt(s, PASSWORD) == "locked"
    assert _audit(s.store, "account_locked").height == 1
    assert _audit(s.store, "sign_in_refused").height == 14


def _attempt(s: SignIn, password: str) -> str:
    try:
        s.local("jo", password, client="portal")
    except BadCredentials:
        return "bad"
    except LockedOut:
        return "locked"
    return "ok"


def _process_attempts(args: tuple[str, str, str, int]) -> list[str]:
    db_url, accounts_path, password, n = args
    config = service_config(db_url, env={"PORTAL_ACCOUNTS_FILE": accounts_path})
    cheap_hasher()
    s = SignIn(Store(db_url), config)
    return [_attempt(s, password) for _ in range(n)]


def test_lockout_holds_across_processes(db_url, tmp_path):
    s = _signin(db_url, tmp_path)
    path = str(tmp_path / "accounts.toml")
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        results = pool.map(_process_attempts, [(db_url, path, "wrong", 4)] * 4)
    flat = [o for r in results for o in r]
    assert flat.count("bad") == 5 and flat.count("locked") == 11, flat
    assert _attempt(s, PASSWORD) == "locked"


def test_unknown_names_are_treated_the_same(db_url, tmp_path, monkeypatch):
    """Same answer, same lockout, and about the same time as a known name; the audit does not
    keep the typed name of an unknown account (it may be a password typed in the wrong box)."""
    accounts.HASHER = accounts.PasswordHasher()  # production parameters for the timing
    accounts._DUMMY.clear()
    path = accounts_file(tmp_path / "a.toml", {"jo": (accounts.hash_password(PASSWORD), ["admin"])})
    s = SignIn(Store(db_url), service_config(db_url, env={"PORTAL_ACCOUNTS_FILE": str(path)}))

    def timed(name: str) -> tuple[float, str]:
        start = time.perf_counter()
        try:
            s.local(name, "wrong guess", client="api")
        except BadCredentials as exc:
            return time.perf_counter() - start, str(exc)
        raise AssertionError("signed in with a wrong password")

    accounts.dummy_hash()
    known = [timed("jo") for _ in range(3)]
    unknown = [timed("Hunter2-typed-here") for _ in range(3)]
    assert {m for _, m in known} == {m for _, m in unknown}
    ratio = statistics.median(t for t, _ in unknown) / statistics.median(t for t, _ in known)
    print(f"\nunknown/known sign-in time: {ratio:.2f}")
    assert 0.5 < ratio < 2.0
    for _ in range(2):
        with pytest.raises(BadCredentials):
            s.local("hunter2-typed-here", "x", client="api")
    with pytest.raises(LockedOut):
        s.local("hunter2-typed-here", "x", client="api")
    failed = _audit(s.store, "sign_in_failed")
    assert "(unknown user)" in failed["actor"].to_list()
    assert not failed["detail"].str.contains("unter2").any()
    assert not failed["actor"].str.contains("unter2").any()
    cheap_hasher()


# --- passwords ---------------------------------------------------------------------------------


def test_argon2_and_legacy_hashes():
    cheap_hasher()
    h = accounts.hash_password("s3cret-enough")
    assert h.startswith("$argon2id$") and "s3cret" not in h
    assert accounts.verify_password("s3cret-enough", h)
    assert not accounts.verify_password("wrong", h)
    assert accounts.verify_password("pw", _scrypt("pw")) and not accounts.verify_password(
        "x", _scrypt("pw")
    )
    assert accounts.verify_password("pw", _pbkdf2("pw"))
    assert not accounts.verify_password("pw", "plain-text")
    assert not accounts.verify_password("x", "scrypt$1$2$3$!!$??")
    assert not accounts.verify_password("x", "$argon2id$garbage")
    assert accounts.needs_rehash(_scrypt("pw")) and not accounts.needs_rehash(h)
    with pytest.raises(accounts.AccountsError) as err:
        accounts.parse_accounts(
            '[accounts.a]\nroles = ["planner"]\npassword_hash = "hunter2"\n'
            '[accounts.b]\nroles = ["wizard"]\npassword_hash = "$argon2id$x"\n',
            source="t.toml",
        )
    assert "accounts.a.password_hash" in str(err.value) and "accounts.b.roles" in str(err.value)
    assert "hunter2" not in str(err.value)


@pytest.mark.parametrize("legacy", [_scrypt, _pbkdf2], ids=["scrypt", "pbkdf2"])
def test_legacy_hashes_are_upgraded_to_argon2_on_sign_in(db_url, tmp_path, legacy):
    old = legacy(PASSWORD)
    s = _signin(db_url, tmp_path, {"jo": (old, ["planner"])})
    path = tmp_path / "accounts.toml"
    path.chmod(0o400)  # the accounts file may be read-only: the upgrade lives in the store
    s.local("jo", PASSWORD, client="portal")
    with s.store.engine.connect() as conn:
        row = conn.execute(sa.select(auth_password_upgrades)).mappings().one()
    assert row["password_hash"].startswith("$argon2id$")
    assert row["replaced_digest"] == hashlib.sha256(old.encode()).hexdigest()
    assert _audit(s.store, "password_rehashed").height == 1
    # The next sign-in checks the argon2 hash (no second upgrade), and wrong still fails.
    s.local("jo", PASSWORD, client="portal")
    assert _audit(s.store, "password_rehashed").height == 1
    with pytest.raises(BadCredentials):
        s.local("jo", "wrong", client="portal")
    # An administrator resets the password in the file: the old upgrade no longer applies.
    path.chmod(0o600)
    accounts_file(path, {"jo": (legacy("a brand new password"), ["planner"])})
    with pytest.raises(BadCredentials):
        s.local("jo", PASSWORD, client="portal")
    s.local("jo", "a brand new password", client="portal")


def test_portal_accounts_hash_prints_an_argon2_hash():
    cheap_hasher()
    res = CliRunner().invoke(cli, ["accounts", "hash", "--stdin"], input="a good long password\n")
    assert res.exit_code == 0, res.output
    h = res.output.strip()
    assert h.startswith("$argon2id$") and accounts.verify_password("a good long password", h)
    short = CliRunner().invoke(cli, ["accounts", "hash", "--stdin"], input="short\n")
    assert short.exit_code == 2


# --- audit ---------------------------------------------------------------------------------------


def test_every_sign_in_event_is_audited_without_a_password(db_url, tmp_path):
    s = _signin(db_url, tmp_path, max_failures=2)
    token, user = s.local("jo", PASSWORD, client="portal")
    s.sign_out(user)
    for _ in range(2):
        with pytest.raises(BadCredentials):
            s.local("jo", "Wr0ng-Secret", client="api")
    with pytest.raises(LockedOut):
        s.local("jo", PASSWORD, client="api")
    log = s.store.read_audit()
    actions = log.sort("id")["action"].to_list()
    assert actions == ["sign_in", "sign_out", "sign_in_failed", "sign_in_failed",
                       "account_locked", "sign_in_refused"]  # fmt: skip
    details = [json.loads(d) for d in log.sort("id")["detail"]]
    assert all(d["method"] == "local" for d in details)
    assert [d["outcome"] for d in details] == [
        "success", "signed_out", "failed", "failed", "locked", "locked",
    ]  # fmt: skip
    everything = json.dumps(log.to_dicts(), default=str)
    assert PASSWORD not in everything and "Wr0ng-Secret" not in everything
    assert token not in everything
    assert set(log["actor"]) == {"jo"}


def test_a_removed_account_loses_its_session(db_url, tmp_path, monkeypatch):
    s = _signin(db_url, tmp_path)
    token, _ = s.local("jo", PASSWORD, client="api")
    accounts_file(
        tmp_path / "accounts.toml", {"someone": (accounts.hash_password("x" * 12), ["admin"])}
    )
    later = datetime.now(UTC) + timedelta(minutes=5)
    monkeypatch.setattr(signin, "_now", lambda: later)
    assert s.resolve(token, portal=False) is None


# --- demo mode refused under a production configuration -----------------------------------


def _production(tmp_path: Path) -> dict[str, dict[str, str]]:
    cfg = tmp_path / "portal.toml"
    cfg.write_text('[auth]\nmode = "oidc"\n[auth.role_map]\n"g" = "admin"\n')
    return {
        "config file": {"PORTAL_CONFIG": str(cfg)},
        "accounts file": {"PORTAL_ACCOUNTS_FILE": str(tmp_path / "accounts.toml")},
        "PostgreSQL store": {"PORTAL_STORE_URL": "postgresql+psycopg://u@localhost/portal"},
    }


def test_the_service_refuses_demo_under_any_production_configuration(tmp_path):
    for what, env in _production(tmp_path).items():
        with pytest.raises(DemoRefusedError) as refused:
            load_config({"PORTAL_DEMO": "1", **env}, cwd=tmp_path, home=tmp_path)
        assert "DEMO MODE REFUSED" in str(refused.value), what
    secrets = tmp_path / "site" / ".streamlit" / "secrets.toml"
    secrets.parent.mkdir(parents=True)
    secrets.write_text('[auth]\nredirect_uri = "https://x/oauth2callback"\n')
    with pytest.raises(DemoRefusedError) as refused:
        load_config({"PORTAL_DEMO": "1"}, cwd=tmp_path / "site", home=tmp_path)
    assert "secrets.toml" in str(refused.value)
    # and without any of these, demo mode is fine
    config = load_config(
        {"PORTAL_DEMO": "1", "PORTAL_STORE_URL": f"sqlite:///{tmp_path}/s.sqlite"},
        cwd=tmp_path,
        home=tmp_path,
    )
    assert config.demo and config.auth_mode == "demo"


def test_portal_serve_refuses_demo_loudly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PORTAL_SERVICE_TOKEN", "t" * 40)
    monkeypatch.setenv("PORTAL_SDC_SECRET", "ab" * 32)
    monkeypatch.delenv("PORTAL_CONFIG", raising=False)
    monkeypatch.delenv("PORTAL_ACCOUNTS_FILE", raising=False)
    res = CliRunner().invoke(
        cli, ["serve", "--demo", "--store", "postgresql+psycopg://u@localhost:1/x"]
    )
    assert res.exit_code == 2
    assert "DEMO MODE REFUSED" in res.output and "postgresql" in res.output


def test_portal_serve_needs_a_credential_and_a_secret(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("PORTAL_SERVICE_TOKEN", "PORTAL_SERVICE_TOKEN_FILE", "PORTAL_SDC_SECRET",
                 "PORTAL_SDC_SECRET_FILE", "PORTAL_DEMO", "PORTAL_CONFIG"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    store = f"sqlite:///{tmp_path}/s.sqlite"
    res = CliRunner().invoke(cli, ["serve", "--store", store])
    assert res.exit_code == 2 and "PORTAL_SERVICE_TOKEN" in res.output
    monkeypatch.setenv("PORTAL_SERVICE_TOKEN", "short")
    res = CliRunner().invoke(cli, ["serve", "--store", store])
    assert res.exit_code == 2 and "at least 32" in res.output and "short" not in res.output
    monkeypatch.setenv("PORTAL_SERVICE_TOKEN", "t" * 40)
    res = CliRunner().invoke(cli, ["serve", "--store", store])
    assert res.exit_code == 2 and "disclosure-control secret" in res.output


def test_config_problems_are_reported_together(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[auth]\nmode = "magic"\nfoo = 1\nidle_timeout_minutes = -1\n'
        '[auth.role_map]\ng = "wizard"\n[other]\n'
    )
    with pytest.raises(ConfigError) as err:
        load_config({"PORTAL_CONFIG": str(bad)}, cwd=tmp_path)
    assert len(err.value.problems) >= 5


def test_idle_timeout_is_configurable(tmp_path):
    cfg = tmp_path / "portal.toml"
    cfg.write_text("[auth]\nidle_timeout_minutes = 5\nsession_hours = 2\n")
    config = load_config({"PORTAL_CONFIG": str(cfg)}, cwd=tmp_path)
    assert config.idle_timeout == timedelta(minutes=5)
    assert config.max_session == timedelta(hours=2)
