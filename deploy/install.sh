#!/bin/sh
# install.sh — install switchboardd as a systemd service (idempotent).
#
#   deploy/install.sh [--bin-dir DIR] [--prefix /usr/local] [--now]
#   deploy/install.sh --uninstall [--purge --yes]
#
# What it does, each step only when needed (running it again changes nothing):
#   - the system user `switchboard` (a sysusers.d entry; created at once on a live system)
#   - /etc/switchboard (root, 0755), /etc/switchboard/credentials (root, 0700)
#   - /etc/switchboard/switchboard.yaml from deploy/switchboard.example.yaml — never
#     overwritten once present (your edits stay)
#   - a random portal webhook secret in /etc/switchboard/credentials/portal_webhook_secret
#     and a random audit chain key in /etc/switchboard/credentials/audit_chain_key (0600
#     root) when there are none: the unit loads them with LoadCredential=
#   - switchboardd and switchboard into PREFIX/bin (from --bin-dir, default .build/release)
#   - the unit into /etc/systemd/system, with ExecStart pointing at PREFIX/bin
#   - on a live system: systemctl daemon-reload and enable (and start with --now)
#
# Packaging: DESTDIR=/path/to/root installs into that tree and touches nothing outside it
# (no user created, no systemctl): the sysusers.d entry creates the user at package install.
#
# --uninstall stops and disables the service and removes the binaries, the unit and the
# sysusers entry; configuration, credentials and the store (/var/lib/switchboard) stay
# unless --purge --yes is given.
set -eu

DESTDIR=${DESTDIR:-}
PREFIX=/usr/local
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BIN_DIR="$REPO/.build/release"
MODE=install
PURGE=no
YES=no
NOW=no

while [ $# -gt 0 ]; do
    case "$1" in
        --bin-dir) BIN_DIR=$2; shift 2 ;;
        --prefix) PREFIX=$2; shift 2 ;;
        --uninstall) MODE=uninstall; shift ;;
        --purge) PURGE=yes; shift ;;
        --yes) YES=yes; shift ;;
        --now) NOW=yes; shift ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
    esac
done

say() { echo "install.sh: $*"; }

# A live system: no DESTDIR, root, and systemd running.
live=no
if [ -z "$DESTDIR" ] && [ "$(id -u)" = 0 ] && [ -d /run/systemd/system ]; then live=yes; fi

UNIT="$DESTDIR/etc/systemd/system/switchboard.service"
SYSUSERS="$DESTDIR/usr/lib/sysusers.d/switchboard.conf"
ETC="$DESTDIR/etc/switchboard"

if [ "$MODE" = uninstall ]; then
    if [ "$PURGE" = yes ] && [ "$YES" != yes ]; then
        echo "install.sh: --purge deletes the configuration, the credentials and every stored conversation; add --yes to confirm" >&2
        exit 64
    fi
    if [ "$live" = yes ]; then
        systemctl disable --now switchboard.service 2>/dev/null || true
        if systemctl is-active --quiet switchboard.service; then
            echo "install.sh: switchboard.service is still running; stop it first" >&2
            exit 75
        fi
    fi
    rm -f "$DESTDIR$PREFIX/bin/switchboardd" "$DESTDIR$PREFIX/bin/switchboard" "$UNIT" "$SYSUSERS"
    [ "$live" = yes ] && systemctl daemon-reload
    if [ "$PURGE" = yes ]; then
        rm -rf "$ETC" "$DESTDIR/var/lib/switchboard"
        say "removed the service, its configuration, credentials and store"
    else
        say "removed the service; kept $ETC and $DESTDIR/var/lib/switchboard (use --purge to remove them)"
    fi
    exit 0
fi

for binary in switchboardd switchboard; do
    if [ ! -x "$BIN_DIR/$binary" ]; then
        echo "install.sh: $BIN_DIR/$binary not found; build first (swift build -c release) or give --bin-dir" >&2
        exit 66
    fi
done

# The user. sysusers.d is the packaging-friendly form; on a live system apply it at once.
install -d -m 0755 "$DESTDIR/usr/lib/sysusers.d"
printf 'u switchboard - "Switchboard daemon" /var/lib/switchboard /usr/sbin/nologin\n' > "$SYSUSERS.tmp"
if cmp -s "$SYSUSERS.tmp" "$SYSUSERS" 2>/dev/null; then rm -f "$SYSUSERS.tmp"; else mv "$SYSUSERS.tmp" "$SYSUSERS"; chmod 0644 "$SYSUSERS"; fi
if [ "$live" = yes ] && ! id switchboard >/dev/null 2>&1; then
    if command -v systemd-sysusers >/dev/null 2>&1; then
        systemd-sysusers "$SYSUSERS"
    else
        useradd --system --home-dir /var/lib/switchboard --shell /usr/sbin/nologin switchboard
    fi
    say "created the system user switchboard"
fi

# Directories. The store directory is the unit's StateDirectory (systemd creates and owns
# it); created here too so that a packaged tree shows it.
install -d -m 0755 "$ETC"
install -d -m 0700 "$ETC/credentials"
install -d -m 0755 "$DESTDIR/var/lib"
install -d -m 0700 "$DESTDIR/var/lib/switchboard"
if [ "$live" = yes ]; then chown switchboard:switchboard "$DESTDIR/var/lib/switchboard"; fi

# Configuration: from the example, once.
if [ ! -e "$ETC/switchboard.yaml" ]; then
    # The store lives in the unit's StateDirectory: say so in the file too, so that the
    # command line (`switchboard --config /etc/switchboard/switchboard.yaml …`) opens the
    # daemon's database and not a new one in the current directory.
    sed 's|^  path: ./var/switchboard.sqlite$|  path: /var/lib/switchboard/switchboard.sqlite|' \
        "$REPO/deploy/switchboard.example.yaml" > "$ETC/switchboard.yaml"
    chmod 0640 "$ETC/switchboard.yaml"
    if [ "$live" = yes ]; then chgrp switchboard "$ETC/switchboard.yaml"; fi
    say "installed $ETC/switchboard.yaml from the example: edit it, then check it with switchboardd --check-config"
fi

# Secrets the unit loads with LoadCredential=: generated once (32 random bytes), written to
# a private temporary file and then moved, never half-written or world-readable.
generate_secret() {  # generate_secret FILE PREFIX MESSAGE
    if [ -e "$1" ]; then return 0; fi
    random=$(head -c 32 /dev/urandom | base64 | tr -d '\n')
    if [ "${#random}" -ne 44 ]; then
        echo "install.sh: could not read 32 random bytes from /dev/urandom" >&2
        exit 70
    fi
    (umask 077 && printf '%s%s\n' "$2" "$random" > "$1.tmp")
    mv "$1.tmp" "$1"
    say "generated $1 (0600 root): $3"
}
# The portal webhook secret (Standard Webhooks form): give the same value to the portal.
generate_secret "$ETC/credentials/portal_webhook_secret" whsec_ "configure the portal with this secret"
# The audit chain's MAC key: keep it out of the database's backups.
generate_secret "$ETC/credentials/audit_chain_key" "" "the audit log's MAC key (switchboard audit verify needs it)"

# Binaries and unit.
install -d -m 0755 "$DESTDIR$PREFIX/bin"
install -m 0755 "$BIN_DIR/switchboardd" "$DESTDIR$PREFIX/bin/switchboardd"
install -m 0755 "$BIN_DIR/switchboard" "$DESTDIR$PREFIX/bin/switchboard"
install -d -m 0755 "$DESTDIR/etc/systemd/system"
sed "s|/usr/local/bin/switchboardd|$PREFIX/bin/switchboardd|g" "$REPO/systemd/switchboard.service" > "$UNIT.tmp"
if cmp -s "$UNIT.tmp" "$UNIT" 2>/dev/null; then rm -f "$UNIT.tmp"; else mv "$UNIT.tmp" "$UNIT"; chmod 0644 "$UNIT"; fi

if [ "$live" = yes ]; then
    systemctl daemon-reload
    systemctl enable switchboard.service >/dev/null
    if [ "$NOW" = yes ]; then systemctl restart switchboard.service; fi
    say "enabled switchboard.service$( [ "$NOW" = yes ] && echo ' and started it')"
else
    say "installed into ${DESTDIR:-/} (no systemctl: not a live system, or DESTDIR set)"
fi
