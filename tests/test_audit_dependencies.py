"""scripts/audit_dependencies.py: a skipped audit is never reported as a clean one; a finding fails."""
import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def audit():
    spec = importlib.util.spec_from_file_location("audit_dependencies",
                                                  ROOT / "scripts" / "audit_dependencies.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_pip_audit(monkeypatch, audit, report=None, stderr="", returncode=0):
    """Replace the pip-audit subprocess: write ``report`` where ``-o`` points, like pip-audit does."""
    def run(cmd, **kwargs):
        if report is not None:
            Path(cmd[cmd.index("-o") + 1]).write_text(json.dumps(report))
        return subprocess.CompletedProcess(cmd, returncode, "", stderr)

    monkeypatch.setattr(audit.subprocess, "run", run)


VULN = {"id": "GHSA-xxxx-yyyy-zzzz", "fix_versions": ["5.2.20"], "aliases": ["CVE-2026-0001"]}


def test_summarise_counts_audited_skipped_and_vulnerable(audit):
    report = {"dependencies": [
        {"name": "django", "version": "5.2.19", "vulns": [VULN]},
        {"name": "celery", "version": "5.5.3", "vulns": []},
        {"name": "torch",
         "skip_reason": "Dependency not found on PyPI and could not be audited: torch (2.13.0)"},
    ]}
    vulns, skipped, audited = audit.summarise(report)
    assert audited == 2
    assert [name for name, _ in skipped] == ["torch"]
    assert vulns == [("django", "5.2.19", VULN)]


def test_a_known_vulnerability_fails(audit, monkeypatch, capsys):
    _fake_pip_audit(monkeypatch, audit,
                    {"dependencies": [{"name": "django", "version": "5.2.19", "vulns": [VULN]}]},
                    returncode=1)
    assert audit.main([]) == 1
    out = capsys.readouterr().out
    assert "VULNERABLE django==5.2.19: GHSA-xxxx-yyyy-zzzz (fixed in: 5.2.20)" in out


def test_everything_skipped_is_said_plainly_and_fails_only_when_strict(audit, monkeypatch, capsys):
    report = {"dependencies": [{"name": "celery", "skip_reason": "Dependency not found on PyPI and could not "
                                                                 "be audited: celery (5.5.3)"}]}
    _fake_pip_audit(monkeypatch, audit, report)
    assert audit.main([]) == 0
    out = capsys.readouterr().out
    assert "0 audited, 1 could not be audited" in out and "says nothing about known vulnerabilities" in out
    assert audit.main(["--strict"]) == 1


def test_unreachable_service_is_not_a_crash_but_not_a_pass_either(audit, monkeypatch, capsys):
    _fake_pip_audit(monkeypatch, audit, None, returncode=1,
                    stderr="requests.exceptions.ConnectionError: "
                           "HTTPSConnectionPool(host='pypi.org', port=443): "
                           "Max retries exceeded")
    assert audit.main([]) == 0
    assert "NOT AUDITED" in capsys.readouterr().out
    assert audit.main(["--strict"]) == 1


def test_a_broken_invocation_is_an_error(audit, monkeypatch):
    _fake_pip_audit(monkeypatch, audit, None, returncode=1, stderr="ERROR: invalid requirements input")
    assert audit.main([]) == 2
