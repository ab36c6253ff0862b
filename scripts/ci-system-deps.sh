#!/usr/bin/env bash
# Install (with apt) the system packages the tests need: an X server for the real-window test
# (Xvfb, xauth), the libraries Qt's xcb platform plugin links against, fonts, and OpenSSH (remote engine test).
# Idempotent: installs only what is missing and does nothing (no apt-get update) when all is there.
# Works as root, or through sudo.  Debian/Ubuntu only; elsewhere it says what to install and exits 1.
#
#   bash scripts/ci-system-deps.sh            # install what is missing
#   bash scripts/ci-system-deps.sh --check    # only list what is missing (exit 1 if anything is)
set -euo pipefail

packages=(
    xvfb xauth
    # Qt's xcb plugin (PySide6/Qt/plugins/platforms/libqxcb.so and Qt/lib/libQt6XcbQpa.so.6); the first
    # three are the ones a plain desktop install most often lacks (app/platform_check.py names them too).
    libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1
    libxcb-image0 libxcb-render-util0 libxcb-util1 libxcb-randr0 libxcb-shape0 libxcb-xkb1
    libxcb-render0 libxcb-shm0 libxcb-sync1 libxcb-xfixes0 libxcb-xinerama0 libxcb-xinput0 libxcb1
    libx11-xcb1 libx11-6 libxkbcommon0 libxkbcommon-x11-0 libsm6 libice6
    libgl1 libegl1 libopengl0 libfontconfig1 libfreetype6 libdbus-1-3 libglib2.0-0
    fonts-dejavu-core
    # tests/app/test_remote_engine.py: the studio's remote engine through a real sshd on 127.0.0.1
    openssh-server openssh-client
    # the player's sound (app/widgets/sound_track.py: QtMultimedia needs PulseAudio's client library) and, for
    # tests/app/test_player_sound.py, a private PulseAudio server with a null sink recorded through parec
    libpulse0 pulseaudio pulseaudio-utils
)

check_only=0
[[ "${1:-}" == "--check" ]] && check_only=1

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "ci-system-deps: not a Debian/Ubuntu system (no apt-get); install these or their equivalents:" >&2
    echo "  ${packages[*]}" >&2
    exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "ci-system-deps: all ${#packages[@]} system packages already installed"
    exit 0
fi
if [[ $check_only -eq 1 ]]; then
    echo "ci-system-deps: missing: ${missing[*]}"
    exit 1
fi

if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "ci-system-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
fi

echo "ci-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A fresh image has no package lists; refresh them once, and again if the install fails on stale ones.
if ! "${as_root[@]}" apt-get -y -q --no-install-recommends install "${missing[@]}"; then
    "${as_root[@]}" apt-get -q update
    "${as_root[@]}" apt-get -y -q --no-install-recommends install "${missing[@]}"
fi
echo "ci-system-deps: done"
