#!/bin/sh
# Checks that the Debian/Ubuntu packages named as arguments are installed. Missing packages are
# installed with apt-get when running as root; otherwise the exact install command is printed and
# the check fails. On systems without dpkg the check is skipped with a note, since package names
# differ there.
set -u

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "note: dpkg-query not found, so system packages were not checked." >&2
    echo "note: qbias needs OpenBLAS, cJSON, stb_ds (stb/stb_ds.h), OpenSSL's libcrypto and pkg-config." >&2
    exit 0
fi

missing=""
for package in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)
    case "$status" in
        *"ok installed"*) ;;
        *) missing="$missing $package" ;;
    esac
done

if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing missing packages:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends $missing; then
        # A fresh container often has no package lists yet.
        apt-get update && apt-get install -y --no-install-recommends $missing || exit 1
    fi
    exit 0
fi

echo "error: missing system packages:$missing" >&2
echo "Install them with:" >&2
echo "    sudo apt-get install -y$missing" >&2
exit 1
