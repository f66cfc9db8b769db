#!/usr/bin/env bash
# Installs (Debian packages, when missing and run as root) and starts the real services the tests
# and benchmarks need, on 127.0.0.1 only:
#   postgres   PostgreSQL 15 (sequencing backend)            -> .services/postgres.env
#   s3         Ceph radosgw with S3 Object Lock (WORM tiles)  -> .services/s3.env
#   chromium   headless Chromium for the explorer's tests     -> .services/chromium.env
# Usage: scripts/services.sh start [NAME...]   (default: all)
#        scripts/services.sh stop  [NAME...]
# Each scripts/services/NAME.sh writes KEY=VALUE lines to .services/NAME.env; tests read them
# through test/helpers/services.ts. Data lives under .services/ (git-ignored); nothing listens
# beyond loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:-start}
shift || true
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(postgres s3 chromium)
mkdir -p .services
status=0
for name in "${names[@]}"; do
  script="scripts/services/$name.sh"
  if [ ! -x "$script" ]; then
    echo "services: no $script" >&2
    status=1
    continue
  fi
  "$script" "$action" || { echo "services: $name $action failed" >&2; status=1; }
done
exit $status
