#!/usr/bin/env bash
# The interop tests (test/interop/) point independent implementations at a real server: Go's
# golang.org/x/mod/sumdb/tlog and sumdb/note (the Go checksum database's verifier), built in
# GOPATH mode from Debian's packages (no module download). Under CI=true those tests fail, not
# skip, when Go is missing, so CI installs it here and says what it has.
set -euo pipefail
if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/golang.org/x/mod/sumdb/tlog ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go golang-golang-x-mod-dev) >/dev/null 2>&1 ||
      echo "ci-interop-tools: apt-get install golang-go golang-golang-x-mod-dev failed; the Go interop test will fail"
  else
    echo "ci-interop-tools: Go or x/mod missing and cannot be installed (not root, or no apt-get)"
  fi
fi
echo "ci-interop-tools: $(go version 2>/dev/null || echo 'no go'); x/mod $(dpkg-query -W -f='${Version}' golang-golang-x-mod-dev 2>/dev/null || echo 'missing')"
