"""The portal starts against a real release service; with no sign-in configured it lets nobody
in; in demo mode it offers the demo accounts and says so; without a service it says why."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.service_fixtures import SERVICE_TOKEN, LiveService, service_config

APP = str(Path(__file__).resolve().parents[1] / "app.py")
ENV = ("PORTAL_DEMO", "PORTAL_CONFIG", "PORTAL_ACCOUNTS_FILE", "PORTAL_STORE_URL",
       "PORTAL_SERVICE_URL", "PORTAL_SERVICE_TOKEN", "PORTAL_SERVICE_TOKEN_FILE")  # fmt: skip


@pytest.fixture
def portal_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PORTAL_SERVICE_TOKEN", SERVICE_TOKEN)
    return monkeypatch


def test_app_starts_and_nobody_gets_in_without_a_sign_in(portal_env, tmp_path):
    config = service_config(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    with LiveService(config, sdc_secret=b"s" * 32) as service:
        portal_env.setenv("PORTAL_SERVICE_URL", service.url)
        at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert "research and statistics portal" in at.title[0].value
    assert any("Sign-in is not configured" in e.value for e in at.error)
    assert not at.button, "no way in without a configured sign-in"


def test_demo_mode_offers_the_demo_accounts_and_says_so(portal_env, tmp_path):
    config = service_config(f"sqlite:///{tmp_path / 'empty.sqlite'}", demo=True)
    with LiveService(config, sdc_secret=b"s" * 32) as service:
        portal_env.setenv("PORTAL_SERVICE_URL", service.url)
        portal_env.setenv("PORTAL_DEMO", "1")
        at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert any("Demo mode" in w.value for w in at.warning)
    assert {b.key for b in at.button} >= {
        "demo_planner",
        "demo_researcher",
        "demo_leadership",
        "demo_admin",
    }


def test_without_a_service_the_portal_says_so(portal_env):
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert any("not connected to a release service" in e.value for e in at.error)
    assert not at.button
