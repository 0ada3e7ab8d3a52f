#!/usr/bin/env bash
# The off-host path, on this one machine: a real S3 server (Ceph's RADOS Gateway from Debian, started
# by test/integration/rgw.sh), a second host in namespaces (test/integration/hostb.sh: its own
# /etc/postgresql, /var/lib/postgresql, pgBackRest and pgmam directories, host name and network),
# an app on this host (A) whose backups go to S3; host B lists the shared repository, copies the
# running app (--as), then — A "lost" — takes it over; A's check fences A once it is back.
#
# As root, after the README's first command (it installs Ceph) and `apt-get install iproute2`.
# Everything it makes lives under /var/lib/pgmam-demo-offsite (its own pgmam configuration, state and
# repository on A; host B's tree) and is removed at the end, the S3 server and host B included.
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD
work=/var/lib/pgmam-demo-offsite
APP=demo_fleet
NET=10.214.99
export PGMAM_CONFIG=$work/pgmam.conf
A() { "$here/bin/pgmam" "$@"; }
B() { PGMAM_CONFIG=/etc/pgmam/pgmam.conf test/integration/hostb.sh run "$work/hostb" "$here/bin/pgmam" "$@"; }
port_of() { node -e 'const a=JSON.parse(require("fs").readFileSync(0,"utf8")); console.log(a.find(e=>e.name===process.argv[1]).port)' "$1"; }

cleanup() {
  set +e
  test/integration/hostb.sh stop "$work/hostb"
  pg_ctlcluster 15 "$APP" stop -m immediate 2>/dev/null
  [ -f "$work/pgmam.conf" ] && A drop "$APP" --purge-backups --yes -q 2>/dev/null
  pg_dropcluster --stop 15 "$APP" 2>/dev/null
  rm -f "/etc/pgbackrest/conf.d/$APP.conf"
  rm -rf "/var/spool/pgbackrest/archive/$APP"
  test/integration/rgw.sh stop "$work/rgw"
  rm -rf "$work"
}
trap cleanup EXIT
cleanup
mkdir -p "$work"
chmod 755 "$work"
printf 'state-dir = %s/state\nrepo-path = %s/repo\nlog-file = %s/pgmam.log\nport-min = 27300\nport-max = 27399\narchive-timeout = 10\n' "$work" "$work" "$work" >"$PGMAM_CONFIG"

echo "--- an S3 server (Ceph RGW) and host B (namespaces, address $NET.2)"
test/integration/rgw.sh start "$work/rgw" 27290
test/integration/hostb.sh start "$work/hostb" demo-hostb "$NET" demo
test/integration/rgw.sh gateway "$work/rgw" fleet 27295 "$NET.1"
mkdir -p "$work/hostb/root/etc-pgmam"
cp "$work/rgw/s3.key" "$work/rgw/tls/ca.crt" "$work/hostb/root/etc-pgmam/"
printf 'port-min = 27300\nport-max = 27399\narchive-timeout = 10\ntakeover-min-idle = 20\n' >"$work/hostb/root/etc-pgmam/pgmam.conf"

echo "--- host A ($(hostname)): the shared repository, and an app with its backups in it"
A repo add offsite --s3-endpoint "$NET.1:27295" --s3-bucket pgbackrest --s3-key-file "$work/rgw/s3.key" --ca-file "$work/rgw/tls/ca.crt" --path /demo
A initcluster "$APP" -q
PORT=$(A list --json | port_of "$APP")
psql_() { runuser -u postgres -- psql -X -q -At -h /var/run/postgresql -p "$PORT" -d postgres "$@"; }
psql_ -c "create table orders (id serial primary key, item text)" -c "insert into orders (item) select 'order ' || g from generate_series(1, 1000) g"
psql_ -c "select pg_switch_wal()" >/dev/null
sleep 3

echo "--- host B: the same repository; every app in it, with the host it came from"
B repo add offsite --s3-endpoint "$NET.1:27295" --s3-bucket pgbackrest --s3-key-file /etc/pgmam/s3.key --ca-file /etc/pgmam/ca.crt --path /demo --attach-new no
B repo list --apps offsite
echo "--- host B: its own $APP is refused (the name is the fleet's)"
B recover "$APP" --from-repo offsite --yes || echo "(refused, exit $?: A still archives)"

echo "--- host B: a copy of the running app, under a new name with its own stanza"
B recover "$APP" --from-repo offsite --as "${APP}_copy" --yes -q
B list

echo "--- host A is lost (its cluster stops dead); once its archive is idle, host B takes the app over"
pg_ctlcluster 15 "$APP" stop -m immediate
sleep 22
time B recover "$APP" --from-repo offsite --yes -q
BPORT=$(B list --json | port_of "$APP")
echo "rows on host B: $(test/integration/hostb.sh run "$work/hostb" runuser -u postgres -- psql -X -At -h /var/run/postgresql -p "$BPORT" -d postgres -c 'select count(*) from orders')"
B check "$APP"

echo "--- host A comes back: its check sees the takeover and fences it"
pg_ctlcluster 15 "$APP" start
A check "$APP" || echo "(check exit $?)"
pg_lsclusters | grep "$APP" || true
A backup "$APP" -q || echo "(backup refused, exit $?: fenced)"
echo "--- done; removing everything the demo made"
