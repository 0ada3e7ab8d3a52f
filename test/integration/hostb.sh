#!/usr/bin/env bash
# A second host on this machine (../shared/research/multihost.md): its own mount, UTS, IPC, PID and
# network namespaces, with private /etc/postgresql, /var/lib/postgresql, /run/postgresql,
# /var/log/postgresql, /etc/pgbackrest(.conf), /var/{lib,log,spool}/pgbackrest, /etc/pgmam,
# /var/lib/pgmam, /var/log/pgmam, /etc/cron.d, /tmp, /dev/shm, /etc/hosts and /etc/hostname, no systemd, and a veth
# pair to this host (A = NET.1, B = NET.2) over which it reaches the test S3 server by address.
#
#   hostb.sh start DIR NAME NET TAG   NET: the first three octets (10.214.3); TAG: a short unique word
#                                     for the veth names. Prints nothing; DIR/pid holds the PID of B's init.
#   hostb.sh run DIR CMD...           run CMD as root on host B (the environment is kept)
#   hostb.sh stop DIR                 KILL B's init (every process of B goes with it), remove DIR
set -euo pipefail

cmd=${1:?start|run|stop}
dir=${2:?directory}

if [ "$cmd" = run ]; then
  shift 2
  exec nsenter -t "$(cat "$dir/pid")" -m -u -i -n -p -- "$@"
fi

if [ "$cmd" = stop ]; then
  if [ -f "$dir/pid" ]; then
    pid=$(cat "$dir/pid")
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    # Its clusters' postmasters die with B's PID namespace; wait until none of them holds a file of DIR.
    for _ in $(seq 100); do
      if ! grep -qs "$dir" /proc/[0-9]*/maps 2>/dev/null; then break; fi
      sleep 0.1
    done
  fi
  # --one-file-system: never through a mount of host B, should one outlive it (its /tmp holds a bind of this project).
  rm -rf --one-file-system "$dir"
  exit 0
fi

[ "$cmd" = start ] || { echo "unknown command $cmd" >&2; exit 2; }
name=${3:?host name}
net=${4:?network, e.g. 10.214.3}
tag=${5:?tag}
root=$dir/root
mkdir -p "$root"
chmod 755 "$dir" "$root"

# Each private directory: owner and mode as Debian's packages make them.
private=(
  "/etc/postgresql etc-postgresql root:root 755"
  "/var/lib/postgresql var-lib-postgresql postgres:postgres 755"
  "/run/postgresql run-postgresql postgres:postgres 2775"
  "/var/log/postgresql var-log-postgresql root:postgres 1775"
  "/etc/pgbackrest etc-pgbackrest root:root 755"
  "/var/lib/pgbackrest var-lib-pgbackrest postgres:postgres 750"
  "/var/log/pgbackrest var-log-pgbackrest postgres:postgres 770"
  "/var/spool/pgbackrest var-spool-pgbackrest postgres:postgres 750"
  "/etc/pgmam etc-pgmam root:root 755"
  "/var/lib/pgmam var-lib-pgmam root:root 755"
  "/var/log/pgmam var-log-pgmam root:root 755"
  "/etc/cron.d etc-cron-d root:root 755"
  "/tmp tmp root:root 1777"
)
# /tmp last: DIR may lie under it.
mounts=""
for entry in "${private[@]}"; do
  read -r target sub owner mode <<<"$entry"
  mkdir -p "$root/$sub"
  chown "$owner" "$root/$sub"
  chmod "$mode" "$root/$sub"
  # The mount point must exist on this host too: an empty directory where it is missing.
  [ -e "$target" ] || mkdir -p "$target"
  [ "$target" = /tmp ] || mounts+="mount --bind $root/$sub $target; "
done
mkdir -p "$root/etc-pgbackrest/conf.d"
printf '[global]\nrepo1-path=/var/lib/pgbackrest\n' >"$root/pgbackrest.conf"
[ -e /etc/pgbackrest.conf ] || touch /etc/pgbackrest.conf
mounts+="mount --bind $root/pgbackrest.conf /etc/pgbackrest.conf; "
printf '127.0.0.1 localhost\n%s.2 %s\n%s.1 hosta\n' "$net" "$name" "$net" >"$root/hosts"
echo "$name" >"$root/hostname"
mounts+="mount --bind $root/hosts /etc/hosts; mount --bind $root/hostname /etc/hostname; "
mounts+="mount -t tmpfs -o mode=1777 tmpfs /dev/shm; "
# No systemd on B: pgmam there starts clusters with pg_ctlcluster, inside B's namespaces.
[ -d /run/systemd ] && mounts+="mount -t tmpfs tmpfs /run/systemd; "
# pgmam's own code stays visible on B at the same path, also when it lies under /tmp (a clone there):
# bound into B's /tmp before that covers this host's.
project=$(cd "$(dirname "$0")/../.." && pwd)
case "$project/" in
  /tmp/*)
    rel=${project#/tmp/}
    mkdir -p "$root/tmp/$rel"
    mounts+="mount --bind $project $root/tmp/$rel; mount --rbind $root/tmp /tmp; "
    ;;
  *) mounts+="mount --bind $root/tmp /tmp; " ;;
esac

rm -f "$dir/init.log"
setsid unshare --mount --uts --ipc --pid --net --fork --mount-proc --propagation private -- \
  bash -c "set -e; $mounts hostname $name; ip link set lo up; echo up >/proc/1/fd/1; exec sleep infinity" </dev/null >"$dir/init.log" 2>&1 &
upid=$!
for _ in $(seq 100); do
  grep -qs '^up$' "$dir/init.log" && break
  kill -0 "$upid" 2>/dev/null || { cat "$dir/init.log" >&2; exit 1; }
  sleep 0.02
done
grep -qs '^up$' "$dir/init.log" || { echo "host $name did not come up: $(cat "$dir/init.log")" >&2; exit 1; }
pid=$(pgrep -P "$upid" | head -1)
echo "$pid" >"$dir/pid"

ip link add "vA$tag" type veth peer name "vB$tag"
ip link set "vB$tag" netns "$pid"
ip addr add "$net.1/24" dev "vA$tag"
ip link set "vA$tag" up
nsenter -t "$pid" -n ip addr add "$net.2/24" dev "vB$tag"
nsenter -t "$pid" -n ip link set "vB$tag" up
