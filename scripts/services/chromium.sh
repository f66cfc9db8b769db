#!/usr/bin/env bash
# Headless Chromium for the browser tests (Debian's `chromium`, driven by playwright-core with
# executablePath; no browser download). Nothing runs in the background: a test launches its own
# browser. Installs the package when missing (as root) and records where the binary is.
# Usage: scripts/services/chromium.sh start|stop   (writes .services/chromium.env)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD/.services
bin=${VELLUM_CHROMIUM:-/usr/bin/chromium}
case "${1:-start}" in
  start)
    if [ ! -x "$bin" ]; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
      else
        echo "chromium: not installed (Debian: apt-get install chromium)" >&2
        exit 1
      fi
    fi
    "$bin" --version >&2
    echo "VELLUM_CHROMIUM=$bin" > "$root/chromium.env"
    ;;
  stop)
    rm -f "$root/chromium.env"
    ;;
  *) echo "usage: $0 start|stop" >&2 && exit 2 ;;
esac
