#!/usr/bin/env bash
# Install Debian's Chromium and its WebDriver (chromedriver) for the browser check of the book
# (`make browser`, tests/browser/check_site.py), and a CJK font (WenQuanYi Micro Hei) so that the
# Chinese edition's pages render their glyphs. Idempotent: does nothing when all are present.
# Needs root (CI runs as root) and Debian's package registry.
set -euo pipefail

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]] && fc-list :lang=zh | grep -q .; then
    echo "install_browser: $(/usr/bin/chromium --version 2>/dev/null | head -n1) already installed"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-dejavu-core \
    fonts-wqy-microhei fontconfig
echo "install_browser: installed $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
