"""Audit the pinned dependencies with pip-audit and say plainly how much of the audit could be done.

    .venv/bin/python scripts/audit_dependencies.py [--strict] [--requirements requirements.txt]

pip-audit asks PyPI's per-release JSON API (``/pypi/<name>/<version>/json``) which vulnerabilities
affect each pinned version. Where that API cannot be reached (an offline machine, a mirror that only
serves the project pages) pip-audit skips the package, and on its own it still says "No known
vulnerabilities found". This wrapper counts the skipped packages and prints them, so nobody reads a
skipped audit as a clean one.

Exit status: 1 when a known vulnerability is found (always), or when some package could not be
audited and ``--strict`` (or ``AUDIT_STRICT=1``) is given; 2 when pip-audit itself fails; else 0.
Findings that are accepted on purpose are listed, with the reason, in ``docs/reliability.md`` and
passed with ``--ignore-vuln`` here (``IGNORED`` below).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# pip-audit raises instead of skipping when the service cannot be reached at all (no route, no DNS).
UNREACHABLE_MARKERS = ("ConnectionError", "ProxyError", "NameResolutionError", "Max retries exceeded",
                       "ReadTimeout", "ConnectTimeout", "Temporary failure in name resolution")

# Vulnerability ids accepted on purpose, each with its justification in docs/reliability.md.
IGNORED: dict[str, str] = {}


def summarise(report: dict) -> tuple[list[tuple[str, str, dict]], list[tuple[str, str]], int]:
    """(vulnerabilities, skipped packages, audited count) from pip-audit's JSON report."""
    vulns, skipped, audited = [], [], 0
    for dep in report.get("dependencies", []):
        if "skip_reason" in dep:
            skipped.append((dep["name"], dep["skip_reason"]))
            continue
        audited += 1
        for vuln in dep.get("vulns", []):
            vulns.append((dep["name"], dep.get("version", "?"), vuln))
    return vulns, skipped, audited


def unreachable(reason: str, *, strict: bool) -> int:
    print(f"pip-audit: NOT AUDITED: {reason}. This run says nothing about known vulnerabilities; run it "
          "where PyPI's JSON API is reachable (docs/reliability.md).")
    return 1 if strict else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requirements", default=str(ROOT / "requirements.txt"))
    parser.add_argument("--strict", action="store_true", default=os.environ.get("AUDIT_STRICT") == "1",
                        help="fail when any package could not be audited")
    parser.add_argument("--timeout", type=int, default=15,
                        help="seconds per request to the vulnerability service")
    parser.add_argument("--budget", type=int, default=600, help="seconds for the whole audit")
    args = parser.parse_args(argv)

    pip_audit = Path(sys.executable).with_name("pip-audit")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        cmd = [str(pip_audit), "-r", args.requirements, "--no-deps", "--disable-pip", "-f", "json",
               "-o", str(out), "--progress-spinner", "off", "--timeout", str(args.timeout)]
        for vuln_id in IGNORED:
            cmd += ["--ignore-vuln", vuln_id]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False,  # noqa: S603 (our own argv)
                                  timeout=args.budget)
        except subprocess.TimeoutExpired:
            return unreachable(f"pip-audit did not finish within {args.budget} s", strict=args.strict)
        if not out.exists():
            if any(marker in proc.stderr for marker in UNREACHABLE_MARKERS):
                last = proc.stderr.strip().splitlines()[-1][:300] if proc.stderr.strip() else ""
                return unreachable(f"pip-audit could not reach the vulnerability service ({last})",
                                   strict=args.strict)
            print(f"pip-audit failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}", file=sys.stderr)
            return 2
        report = json.loads(out.read_text())

    vulns, skipped, audited = summarise(report)
    total = audited + len(skipped)
    print(f"pip-audit: {total} pinned packages, {audited} audited, {len(skipped)} could not be audited, "
          f"{len(vulns)} known vulnerabilities")
    for name, version, vuln in vulns:
        fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed release"
        print(f"  VULNERABLE {name}=={version}: {vuln.get('id')} (fixed in: {fixes})")
    if skipped:
        reasons = sorted({reason.split(":")[0] for _, reason in skipped})
        print(f"  NOT AUDITED ({'; '.join(reasons)}): " + ", ".join(name for name, _ in skipped))
        if audited == 0:
            print("  The vulnerability service answered for no package: this audit says nothing about "
                  "known vulnerabilities. Run it where PyPI's JSON API is reachable (docs/reliability.md).")
    if vulns:
        return 1
    if skipped and args.strict:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
