#!/usr/bin/env bash
# An S3 server that enforces Object Lock, for tests and benchmarks: Ceph radosgw (Debian's
# radosgw, ceph-mon, ceph-osd) as a one-monitor, one-OSD cluster on memstore in .services/s3/,
# every daemon on 127.0.0.1 only, with auth off inside the cluster (test-only: nothing listens
# beyond loopback) and an S3 user whose keys are made fresh on each start. Creates the bucket
# $VELLUM_BUCKET (default vellum-test) with Object Lock enabled. Memstore keeps nothing across a
# stop: each start is a new, empty store. Installs the packages when missing (as root).
# Usage: scripts/services/s3.sh start|stop   (writes .services/s3.env; `start` tries 3 times)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD/.services
dir=$root/s3
mon_port=${VELLUM_CEPH_MON_PORT:-46789}
rgw_port=${VELLUM_S3_PORT:-47480}
bucket=${VELLUM_BUCKET:-vellum-test}
conf=$dir/ceph.conf

stop_daemons() {
  for pidfile in "$dir"/run/*.pid; do
    [ -f "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  # Daemons without a pid file yet (a start that failed half-way).
  pkill -f -- "-c $conf" 2>/dev/null || true
  for _ in $(seq 50); do pgrep -f -- "-c $conf" >/dev/null || break; sleep 0.1; done
  pkill -9 -f -- "-c $conf" 2>/dev/null || true
}

wait_for() { # what, command…
  local what=$1; shift
  for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "s3: timed out waiting for $what (logs in $dir/log)" >&2
  return 1
}

case "${1:-start}" in
  start)
    # A cluster can fail to come up on a busy machine (a port still held by a daemon that is
    # exiting, the gateway answering before it serves S3): one clean retry, saying why.
    # Twice more after a failure, each time saying why (the daemons' last log lines).
    for attempt in 1 2 3; do
      if "$0" start-once; then exit 0; fi
      [ "$attempt" = 3 ] && break
      echo "s3: start $attempt failed; stopping what it left and trying again" >&2
      stop_daemons
      sleep $((attempt * 3))
    done
    exit 1
    ;;
  start-once)
    trap 'echo "s3: failed at line $LINENO: $BASH_COMMAND (logs in $dir/log)" >&2; tail -n 15 "$dir"/log/*.log 2>/dev/null | sed "s/^/s3:   /" >&2' ERR
    if ! command -v radosgw >/dev/null 2>&1 || ! command -v ceph-osd >/dev/null 2>&1; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
          radosgw ceph-mon ceph-osd ceph-common uuid-runtime) >/dev/null
      else
        echo "s3: radosgw not installed (Debian: apt-get install radosgw ceph-mon ceph-osd ceph-common uuid-runtime)" >&2
        exit 1
      fi
    fi
    stop_daemons
    rm -rf "$dir"
    mkdir -p "$dir"/{run,log,mon/a,osd/0,rgw}
    fsid=$(uuidgen)
    cat > "$conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mon_port
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
ms cluster mode = crc
ms service mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms mon client mode = crc
ms bind ipv6 = false
ms bind msgr2 = false
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
mon max pg per osd = 1000
run dir = $dir/run
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
keyring = $dir/keyring
[mon.a]
mon data = $dir/mon/a
[osd.0]
osd data = $dir/osd/0
osd objectstore = memstore
memstore device bytes = 4294967296
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $dir/rgw
rgw dns name = 127.0.0.1
CONF
    ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
    ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring"
    ceph-mon -c "$conf" -i a
    wait_for "the monitor" ceph -c "$conf" --connect-timeout 5 mon stat
    osd_id=$(ceph -c "$conf" osd create)
    ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$(uuidgen)" >/dev/null 2>&1
    ceph -c "$conf" osd crush add "osd.$osd_id" 1.0 root=default >/dev/null 2>&1
    ceph-osd -c "$conf" -i "$osd_id" 2>"$dir/log/osd-start.log"
    wait_for "the OSD" sh -c "ceph -c '$conf' osd stat | grep -q '1 up'"
    radosgw -c "$conf" -n client.rgw.a
    wait_for "radosgw" curl -sf "http://127.0.0.1:$rgw_port/"
    access=$(head -c 15 /dev/urandom | base32 | tr -d '=' | head -c 20)
    secret=$(head -c 30 /dev/urandom | base64 | tr -d '=+/' | head -c 40)
    radosgw-admin -c "$conf" user create --uid=vellum --display-name=vellum \
      --access-key="$access" --secret-key="$secret" >/dev/null
    {
      echo "AWS_ENDPOINT_URL=http://127.0.0.1:$rgw_port"
      echo "AWS_ACCESS_KEY_ID=$access"
      echo "AWS_SECRET_ACCESS_KEY=$secret"
      echo "AWS_REGION=us-east-1"
      echo "VELLUM_BUCKET=$bucket"
    } > "$root/s3.env.new"
    chmod 600 "$root/s3.env.new"
    # The bucket, with Object Lock (and so versioning) enabled, through the same S3 API users use.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true EP="http://127.0.0.1:$rgw_port" AK="$access" SK="$secret" B="$bucket" node -e '
      const { S3Client, CreateBucketCommand } = require("@aws-sdk/client-s3");
      const s3 = new S3Client({ endpoint: process.env.EP, forcePathStyle: true, region: "us-east-1",
        credentials: { accessKeyId: process.env.AK, secretAccessKey: process.env.SK } });
      s3.send(new CreateBucketCommand({ Bucket: process.env.B, ObjectLockEnabledForBucket: true }))
        .catch((e) => { console.error("s3: creating the bucket: " + e.message); process.exit(1); });
    '
    mv "$root/s3.env.new" "$root/s3.env"
    echo "s3: radosgw $(radosgw --version | awk '{print $3}') on 127.0.0.1:$rgw_port, bucket $bucket (Object Lock)" >&2
    ;;
  stop)
    stop_daemons
    rm -rf "$dir" "$root/s3.env"
    ;;
  *) echo "usage: $0 start|stop" >&2 && exit 2 ;;
esac
