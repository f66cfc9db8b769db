#!/usr/bin/env bash
# The fault suite (test/faults/) uses real faults: tmpfs mounts (root), strace -e inject= on a
# running server (strace, root for ptrace). Under CI=true its tests fail, not skip, when a tool is
# missing, so CI installs strace here (Debian package) and says what it has.
set -euo pipefail
if ! command -v strace >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq strace) >/dev/null 2>&1 ||
      echo "ci-fault-tools: apt-get install strace failed; the strace fault tests will fail"
  else
    echo "ci-fault-tools: strace missing and cannot be installed (not root, or no apt-get)"
  fi
fi
echo "ci-fault-tools: uid $(id -u); $(strace -V 2>/dev/null | head -1 || echo 'no strace')"
