"""Bad configuration stops start-up with a message naming the variable."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.env import ConfigError, database_from_url, env_bool, env_int, env_url

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://root@localhost/db"),
        ("DATABASE_URL", "postgres://localhost"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("MODEL_SERVICE_URL", "ftp://models"),
        ("WEB_PORT", "eighty"),
        ("MODEL_SERVICE_PORT", "70000"),
        ("DEBUG", "maybe"),
        ("DJANGO_ENV", "staging"),
        ("JOB_TIME_LIMIT", "5"),
        ("UPLOAD_MAX_BYTES", "-1"),
        ("API_SUBMIT_RATE", "lots"),
    ],
)
def test_bad_value_stops_startup_naming_the_variable(variable, value, tmp_path):
    env = dict(os.environ, **{variable: value, "VAR_DIR": str(tmp_path),
                              "DJANGO_SETTINGS_MODULE": "config.settings"})
    proc = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "ConfigError" in proc.stderr
    assert variable in proc.stderr.splitlines()[-1]


def test_production_requires_secret_key(tmp_path):
    env = dict(os.environ, DJANGO_ENV="production", VAR_DIR=str(tmp_path),
               DJANGO_SETTINGS_MODULE="config.settings")
    env.pop("SECRET_KEY", None)
    proc = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "SECRET_KEY is required when DJANGO_ENV=production" in proc.stderr


def test_production_requires_a_stable_deidentification_salt(tmp_path):
    env = dict(os.environ, DJANGO_ENV="production",
               SECRET_KEY="p" * 10 + "Q7#vL2!xM9@nR4$tW6%yB1^" + "z" * 20,
               VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings")
    env.pop("MEDICAL_DEID_SALT", None)
    proc = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "MEDICAL_DEID_SALT is required when DJANGO_ENV=production" in proc.stderr


def test_readers(monkeypatch):
    monkeypatch.setenv("X_BOOL", "yes")
    assert env_bool("X_BOOL") is True
    monkeypatch.setenv("X_INT", "12")
    assert env_int("X_INT", 1, minimum=10) == 12
    monkeypatch.setenv("X_INT", "9")
    with pytest.raises(ConfigError, match="X_INT=9 is below the minimum 10"):
        env_int("X_INT", 1, minimum=10)
    monkeypatch.setenv("X_URL", "postgres://u:secret@h/db")
    assert env_url("X_URL", None, schemes=("postgres",)) == "postgres://u:secret@h/db"
    monkeypatch.setenv("X_URL", "mysql://u:secret@h/db")
    with pytest.raises(ConfigError) as info:
        env_url("X_URL", None, schemes=("postgres",))
    assert "secret" not in str(info.value)  # passwords never reach an error message


def test_database_urls():
    pg = database_from_url("postgres://u:p@db.example:5433/suite")
    assert (pg["ENGINE"], pg["NAME"], pg["HOST"], pg["PORT"]) == (
        "django.db.backends.postgresql", "suite", "db.example", "5433")
    lite = database_from_url("sqlite:////tmp/x.db")
    assert lite["NAME"] == "/tmp/x.db"
