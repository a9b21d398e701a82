"""registry.settings: one reader of the environment, two processes, every problem at once,
and no secret in a message, a repr, or the web process's settings."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from anonymise import cellkey
from anonymise.extract import load_extract_policy
from registry.settings import (
    ServiceSettings,
    SettingsError,
    WebSettings,
    WorkFolder,
    load_extract_policy_file,
)

SECRET = "5ec7e7" * 8
KEY = "ab" * 32


def test_a_misspelt_variable_and_a_bad_value_are_reported_together_without_values():
    env = {"PORTAL_SDC_SECRETT": SECRET, "PORTAL_DEMO": SECRET, "PORTAL_WORK_DIR": "/w"}
    with pytest.raises(SettingsError) as err:
        ServiceSettings.load(env)
    text = str(err.value)
    assert "PORTAL_SDC_SECRETT: not a setting of any portal process" in text
    assert len(err.value.problems) == 1  # unknown names are reported before values are read
    assert SECRET not in text
    with pytest.raises(SettingsError) as err:
        ServiceSettings.load({"PORTAL_DEMO": SECRET, "PORTAL_STORE_AUTO_UPGRADE": "perhaps"})
    names = sorted(p.split(":")[0] for p in err.value.problems)
    assert names == ["PORTAL_DEMO", "PORTAL_STORE_AUTO_UPGRADE"]  # both, at once
    assert SECRET not in str(err.value) and "perhaps" not in str(err.value)


def test_the_thin_clients_names_are_the_settings_models_fields():
    """registry.environment lists every variable without pydantic (for `portal table
    --service`): its list is exactly the two settings models' fields, and its session token
    read refuses a misspelling as the models do, with the same message."""
    from registry import environment

    assert ServiceSettings.variables() | WebSettings.variables() == environment.SETTINGS_VARIABLES
    env = {"PORTAL_SESION_TOKEN": "t0ken", "PORTAL_SESSION_TOKEN": " s3ssion "}
    with pytest.raises(SettingsError) as thin:
        environment.session_token(env)
    with pytest.raises(SettingsError) as full:
        ServiceSettings.load(env)
    assert thin.value.problems == full.value.problems
    assert "t0ken" not in str(thin.value)
    assert environment.session_token({"PORTAL_SESSION_TOKEN": " s3ssion "}) == "s3ssion"
    assert environment.session_token({"PORTAL_SESSION_TOKEN": "  "}) is None
    token = ServiceSettings.load({"PORTAL_SESSION_TOKEN": "s3ssion"}).session_token
    assert token is not None and token.get_secret_value() == "s3ssion"


def test_other_variables_and_the_test_suites_are_not_misspellings():
    settings = ServiceSettings.load(
        {"HOME": "/root", "PORTAL_TEST_PG_URL": "postgresql://x", "PORTAL_ACCOUNTS": "[a]"}
    )
    assert settings.store_url is None and not settings.demo


def test_secrets_are_typed_as_secrets_and_never_print():
    settings = ServiceSettings.load(
        {
            "PORTAL_SDC_SECRET": SECRET,
            "PORTAL_PSEUDONYM_KEY": KEY,
            "PORTAL_SERVICE_TOKEN": "t" * 40,
            "PORTAL_STORE_URL": "postgresql://portal:hunter2@db/portal",
        }
    )
    shown = repr(settings) + str(settings) + str(settings.model_dump())
    for value in (SECRET, KEY, "t" * 40, "hunter2"):
        assert value not in shown
    assert settings.sdc_secret is not None and settings.sdc_secret.get_secret_value() == SECRET
    assert settings.store_url is not None
    assert "hunter2" in settings.store_url.get_secret_value()


def test_the_web_process_cannot_hold_the_services_secrets():
    assert {"sdc_secret", "pseudonym_key", "store_url", "work_dir", "config"}.isdisjoint(
        WebSettings.model_fields
    )
    env = {
        "PORTAL_SERVICE_URL": "http://127.0.0.1:8600",
        "PORTAL_SERVICE_TOKEN": "t" * 40,
        "PORTAL_SDC_SECRET": SECRET,
        "PORTAL_PSEUDONYM_KEY": KEY,
        "PORTAL_STORE_URL": "postgresql://portal:hunter2@db/portal",
        "PORTAL_CONFIG": "/etc/portal.toml",
    }
    web = WebSettings.load(env)
    assert web.service_url == "http://127.0.0.1:8600"
    # Only the names of the production variables it saw (they refuse demo mode).
    assert web.production_variables == ("PORTAL_CONFIG", "PORTAL_STORE_URL")
    held = repr(web) + str(web.model_dump()) + repr(pickle.dumps(web))
    for value in (SECRET, KEY, "hunter2", "/etc/portal.toml"):
        assert value not in held
    with pytest.raises(ValueError, match="sdc_secret"):
        WebSettings(sdc_secret=SECRET)  # type: ignore[call-arg]


def test_the_web_config_still_refuses_demo_mode_beside_a_production_store(tmp_path: Path):
    from portal.web.config import ConfigError, load_config

    env = {"PORTAL_DEMO": "1", "PORTAL_STORE_URL": "postgresql://u:hunter2@db/p"}
    with pytest.raises(ConfigError) as err:
        load_config(env, cwd=tmp_path)
    assert "PORTAL_STORE_URL is not a local SQLite file" in str(err.value)
    assert "hunter2" not in str(err.value)
    with pytest.raises(ConfigError, match="PORTAL_SERVICE_ULR"):
        load_config({"PORTAL_SERVICE_ULR": "http://x"}, cwd=tmp_path)


def test_the_privacy_core_reads_its_secret_through_the_settings(tmp_path: Path):
    assert cellkey.load_sdc_secret({"PORTAL_SDC_SECRET": SECRET}) == bytes.fromhex(SECRET)
    with pytest.raises(SettingsError, match="PORTAL_SDC_SECRET_FIEL"):
        cellkey.load_sdc_secret({"PORTAL_SDC_SECRET_FIEL": str(tmp_path / "k")})


def test_the_service_config_names_a_misspelt_variable():
    from portal.service.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="PORTAL_ACOUNTS_FILE"):
        load_config({"PORTAL_ACOUNTS_FILE": "/etc/accounts.toml"})


def test_the_extract_policy_reports_every_problem_with_its_key(tmp_path: Path):
    assert load_extract_policy().ref == "council-extract@2"
    path = tmp_path / "extract.toml"
    path.write_text(
        "[policy]\npolicy_id = 'p'\nversion = 1\nk = 3\nl = 0\nsuppression_limit = 0.5\n"
        "min_k = 5\ncolour = 'red'\n\n[extra]\nx = 1\n"
    )
    with pytest.raises(SettingsError) as err:
        load_extract_policy_file(path)
    problems = err.value.problems
    assert str(path) in str(err.value)
    wheres = sorted(p.split(":")[0] for p in problems)
    assert wheres == ["extra", "policy.colour", "policy.l", "policy.suppression_limit"]
    # The floor is checked once the fields themselves are valid.
    path.write_text(
        "[policy]\npolicy_id = 'p'\nversion = 1\nk = 3\nl = 2\nsuppression_limit = 0.05\n"
        "min_k = 5\n"
    )
    with pytest.raises(SettingsError, match="k=3 is below the floor min_k=5"):
        load_extract_policy_file(path)
    path.write_text("[policy]\npolicy_id = 'p'\n")
    with pytest.raises(SettingsError) as err:
        load_extract_policy_file(path)
    assert "policy.k: Field required" in err.value.problems


def test_the_work_folder_catalogue_is_the_layout_the_pipeline_writes():
    folder = WorkFolder(Path("w"))
    assert folder.linked_records == Path("w/zone_a/linked_records.parquet")
    assert folder.events_of("early_help") == Path("w/zone_b/events/early_help.parquet")
    assert folder.run_manifest == Path("w/run.json")
    from pipelines.clerical import CLERICAL_DECISIONS, CLERICAL_LABELS

    assert folder.clerical_decisions.name == CLERICAL_DECISIONS
    assert folder.clerical_labels.name == CLERICAL_LABELS
