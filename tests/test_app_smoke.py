"""The portal starts, and with no sign-in configured it lets nobody in."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def test_app_starts_without_exception(monkeypatch):
    for name in ("PORTAL_DEMO", "PORTAL_CONFIG", "PORTAL_ACCOUNTS_FILE"):
        monkeypatch.delenv(name, raising=False)
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert "research and statistics portal" in at.title[0].value
    assert any("Sign-in is not configured" in e.value for e in at.error)
    assert not at.button, "no way in without a configured sign-in"


def test_demo_mode_offers_the_demo_accounts_and_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("PORTAL_DEMO", "1")
    monkeypatch.setenv("PORTAL_STORE_URL", f"sqlite:///{tmp_path / 'empty.sqlite'}")
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert any("Demo mode" in w.value for w in at.warning)
    assert {b.key for b in at.button} >= {
        "demo_planner",
        "demo_researcher",
        "demo_leadership",
        "demo_admin",
    }
