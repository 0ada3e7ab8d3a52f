#!/usr/bin/env bash
# A short demo on the default local repository: create a cluster, write, back up, restore to a
# point in time, list.
# Extended as pitr and branch land. Safe to run again: it reuses demo_app if pgmam already made it.
set -euo pipefail
cd "$(dirname "$0")/.."
PGMAM=bin/pgmam
APP=demo_app

if ! $PGMAM list --json | grep -q "\"cluster\": \"15/$APP\""; then
  $PGMAM initcluster "$APP" --db demo
else
  # Run again: each run's pitr and branch sync keep the data directory they replaced (preserved, listed);
  # the earlier runs' go first, so check stays within preserved-max-mb however often the demo runs.
  for c in "$APP" "${APP}_dev"; do
    if $PGMAM list --json | grep -q "\"cluster\": \"15/$c\""; then $PGMAM prune "$c" --older-than 0s --yes -q; fi
  done
fi
# Run again on a host without systemd after a reboot, its clusters are down: start them first.
for c in "$APP" "${APP}_dev" "${APP}_replica"; do
  if $PGMAM list --json | node -e 'const a=JSON.parse(require("fs").readFileSync(0,"utf8")); process.exit(a.some(e=>e.name===process.argv[1]&&e.status==="down")?0:1)' "$c"; then
    pg_ctlcluster 15 "$c" start
  fi
done
PORT=$($PGMAM list --json | node -e 'const a=JSON.parse(require("fs").readFileSync(0,"utf8")); console.log(a.find(e=>e.name===process.argv[1]).port)' "$APP")
psql_() { runuser -u postgres -- psql -X -q -At -h /var/run/postgresql -p "$PORT" -d demo "$@"; }

psql_ -c "create table if not exists orders (id serial primary key, item text, at timestamptz default now())"
psql_ -c "insert into orders (item) values ('written at ' || now())"
echo "rows in demo.orders: $(psql_ -c 'select count(*) from orders')"

echo "--- pgbackrest info (the stanza pgmam created, with its first full backup)"
(cd /tmp && runuser -u postgres -- pgbackrest --stanza="$APP" info)

echo "--- backup: an incremental backup; a second run right after skips it (nothing written)"
$PGMAM backup "$APP" --type incr
$PGMAM backup "$APP" --type incr

echo "--- point-in-time restore: a row written after T disappears"
sleep 1.1   # a restore target lies at least one whole second after the last backup's end
psql_ -c "insert into orders (item) values ('kept')"
T=$(psql_ -c "select now()")
psql_ -c "insert into orders (item) values ('dropped by the pitr')"
$PGMAM pitr "$APP" --to "$T" --yes
echo "rows after restoring to $T:"
psql_ -c "select item from orders order by id"

echo "--- branch: an independent copy with its own port and stanza; the parent is untouched"
if $PGMAM list --json | grep -q "\"cluster\": \"15/${APP}_dev\""; then
  $PGMAM branch sync "${APP}_dev" --yes
else
  $PGMAM branch create "$APP" --name dev
fi
BPORT=$($PGMAM list --json | node -e 'const a=JSON.parse(require("fs").readFileSync(0,"utf8")); console.log(a.find(e=>e.name===process.argv[1]).port)' "${APP}_dev")
runuser -u postgres -- psql -X -q -At -h /var/run/postgresql -p "$BPORT" -d demo -c "insert into orders (item) values ('only in the branch')"
echo "rows in the branch: $(runuser -u postgres -- psql -X -At -h /var/run/postgresql -p "$BPORT" -d demo -c 'select count(*) from orders'), in the parent: $(psql_ -c 'select count(*) from orders')"

echo "--- replica: a streaming replica over TLS, from the app's newest backup (no load on the primary)"
if ! $PGMAM list --json | grep -q "\"cluster\": \"15/${APP}_replica\""; then
  # A demo_app an older pgmam made has no TLS yet: a replica streams only over TLS.
  if $PGMAM tls show --json | node -e 'const t=JSON.parse(require("fs").readFileSync(0,"utf8")); process.exit(t.clusters.some(c=>c.name===process.argv[1]&&!c.enabled)?0:1)' "$APP"; then
    $PGMAM tls enable "$APP" --yes
  fi
  $PGMAM replica create "$APP"
fi
RPORT=$($PGMAM list --json | node -e 'const a=JSON.parse(require("fs").readFileSync(0,"utf8")); console.log(a.find(e=>e.name===process.argv[1]).port)' "${APP}_replica")
psql_ -c "insert into orders (item) values ('streamed to the replica')"
sleep 1
echo "on the replica: $(runuser -u postgres -- psql -X -At -h /var/run/postgresql -p "$RPORT" -d demo -c "select item from orders where item = 'streamed to the replica' limit 1")"

echo "--- pgmam drill (the newest backup and its archive restored into a scratch cluster, checked, RTO and RPO recorded, the scratch dropped)"
$PGMAM drill "$APP"

echo "--- pgmam list"
$PGMAM list

echo "--- pgmam tls show (each cluster its own certificate from pgmam's CA; TCP without TLS is refused)"
$PGMAM tls show

echo "--- pgmam check (exit 0: every managed cluster healthy; 7 otherwise)"
$PGMAM check
