#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium, which the taxi report test (tests/taxi_report.rs)
# uses to check that the report renders. Idempotent: does nothing but print the version when
# /usr/bin/chromium is already there. Needs root (or sudo) on Debian: Ubuntu's `chromium` package
# is only a stub for the snap, which does not run in CI containers.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ ! -x "$CHROMIUM" ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        SUDO="sudo"
    fi
    $SUDO apt-get update
    # With recommends: they bring fonts-liberation, without which text may not render. The
    # frontend is set through env because sudo drops the caller's environment.
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi

# The Debian wrapper script prints harmless shell noise on some machines; keep only the version.
"$CHROMIUM" --version 2>/dev/null
