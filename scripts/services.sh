#!/usr/bin/env bash
# Installs (Debian packages, when missing and run as root) and starts the real services the tests
# and benchmarks need, on 127.0.0.1 only:
#   postgres   PostgreSQL 15 (sequencing backend)       VELLUM_PG_URL
#   s3         Ceph radosgw with S3 Object Lock (WORM)  AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
#                                                       AWS_SECRET_ACCESS_KEY, AWS_REGION, VELLUM_BUCKET
#   chromium   headless Chromium (explorer tests)       VELLUM_CHROMIUM
# Usage: scripts/services.sh up   [NAME...]   (default: all; prints `export` lines to reach them)
#        scripts/services.sh down [NAME...]
# Each scripts/services/NAME.sh (called with start|stop) writes KEY=VALUE lines to
# .services/NAME.env; tests read them through test/helpers/services.ts, so exporting is optional.
# Data lives under .services/ (git-ignored); nothing listens beyond loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:-up}
shift || true
case "$action" in
  up | start) action=start ;;
  down | stop) action=stop ;;
  *) echo "usage: scripts/services.sh up|down [postgres|s3|chromium...]" >&2 && exit 2 ;;
esac
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
  if [ "$action" = start ] && [ -f ".services/$name.env" ]; then
    sed -n 's/^\([A-Z0-9_]*\)=\(.*\)$/export \1=\2/p' ".services/$name.env"
  fi
done
exit $status
