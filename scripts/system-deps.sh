#!/usr/bin/env bash
# Install the Debian packages the tests (and benchmarks) use, when missing.
# As root: installs them with apt-get. Otherwise: prints exactly what to run, exits 1.
set -euo pipefail

packages=(
  gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
  gstreamer1.0-plugins-bad gstreamer1.0-libav gstreamer1.0-x
  chromium chromium-driver ffmpeg coturn janus
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

command="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "streamlab: the tests need Debian packages that are not installed. Run:" >&2
  echo "  sudo apt-get update && sudo $command" >&2
  exit 1
fi

echo "streamlab: installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
