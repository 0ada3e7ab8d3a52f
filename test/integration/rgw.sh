#!/usr/bin/env bash
# A single-node Ceph cluster with a RADOS Gateway over HTTPS: the real S3 server of the tests and
# benchmarks (../shared/research/multihost.md). No systemd: every daemon runs in the foreground under
# setsid, and its PID is recorded so `stop` ends only what `start` began.
#
#   rgw.sh start DIR BASE_PORT   mon on BASE_PORT (v2) and BASE_PORT+1 (v1), HTTPS on BASE_PORT+2;
#                                writes DIR/env (endpoint, port, bucket, CA file, key file) when ready
#   rgw.sh stop DIR              TERM, then KILL after 3 s, the daemons DIR/pids names; removes DIR
#   rgw.sh gateway DIR NAME PORT [ADDR]
#                                another radosgw on the same RADOS cluster, HTTPS on ADDR:PORT (default
#                                127.0.0.1; another address gets a certificate of its own naming it), its
#                                PID in DIR/gw-NAME.pid (an outage test stops it without touching the others)
#   rgw.sh gateway-stop DIR NAME KILL that gateway (an abrupt outage) and wait until it is gone
#
# The certificate comes from a throwaway CA in DIR/tls; its SANs hold localhost and 127.0.0.1 as DNS
# names too, because pgBackRest checks host names against DNS SANs only.
set -euo pipefail

cmd=${1:?start|stop}
dir=${2:?directory}

stop() {
  [ -f "$dir/pids" ] || { rm -rf "$dir"; return 0; }
  local pids
  pids=$(cat "$dir/pids")
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 30); do
    local alive=0
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  rm -rf "$dir"
}

if [ "$cmd" = stop ]; then stop; exit 0; fi

conf=$dir/ceph.conf
if [ "$cmd" = gateway ]; then
  name=${3:?name}
  port=${4:?port}
  addr=${5:-127.0.0.1}
  crt=$dir/tls/server.crt
  key=$dir/tls/server.key
  if [ "$addr" != 127.0.0.1 ]; then
    # A gateway another host reaches by address: pgBackRest checks the name against DNS SANs only.
    crt=$dir/tls/server-$name.crt
    key=$dir/tls/server-$name.key
    openssl req -newkey rsa:2048 -nodes -keyout "$key" -out "$dir/tls/server-$name.csr" -subj "/CN=$addr" 2>/dev/null
    printf 'subjectAltName=DNS:%s,IP:%s,DNS:localhost,DNS:127.0.0.1,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' "$addr" "$addr" >"$dir/tls/ext-$name.cnf"
    openssl x509 -req -in "$dir/tls/server-$name.csr" -CA "$dir/tls/ca.crt" -CAkey "$dir/tls/ca.key" -CAcreateserial -out "$crt" -days 2 -extfile "$dir/tls/ext-$name.cnf" 2>/dev/null
  fi
  # Its own section: a second [client.rgw.NAME] with its own frontend port; the same pools and users.
  if ! grep -q "^\\[client.rgw.$name\\]" "$conf"; then
    timeout 60 ceph -c "$conf" auth get-or-create "client.rgw.$name" mon 'allow rw' osd 'allow rwx' -o "$dir/rgw-$name.keyring" >/dev/null
    printf '[client.rgw.%s]\nkeyring = %s\nrgw data = %s\nrgw frontends = beast ssl_endpoint=%s:%s tcp_nodelay=1 ssl_certificate=%s ssl_private_key=%s\nrgw dns name = localhost\n' \
      "$name" "$dir/rgw-$name.keyring" "$dir/rgw-$name" "$addr" "$port" "$crt" "$key" >>"$conf"
  fi
  mkdir -p "$dir/rgw-$name"
  setsid radosgw -c "$conf" -n "client.rgw.$name" -f </dev/null >>"$dir/log/rgw-$name.out" 2>&1 &
  pid=$!
  echo $pid >"$dir/gw-$name.pid"
  echo $pid >>"$dir/pids"
  for _ in $(seq 600); do
    curl -s -o /dev/null --cacert "$dir/tls/ca.crt" "https://$addr:$port/" && exit 0
    kill -0 $pid 2>/dev/null || { echo "radosgw $name exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "radosgw $name did not answer on $port" >&2
  exit 1
fi
if [ "$cmd" = gateway-stop ]; then
  name=${3:?name}
  pid=$(cat "$dir/gw-$name.pid")
  kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  exit 0
fi

base=${3:?base port}
mon2=$base
mon1=$((base + 1))
https=$((base + 2))
mkdir -p "$dir"/{run,log,mon.a,osd.0,tls,rgw}
chmod 755 "$dir" "$dir/tls"
fsid=$(uuidgen)
: >"$dir/pids"

# A throwaway CA and a server certificate it signs.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/tls/ca.key" -out "$dir/tls/ca.crt" -days 2 -subj "/CN=pgmam-test-ca" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$dir/tls/server.key" -out "$dir/tls/server.csr" -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,DNS:127.0.0.1,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >"$dir/tls/ext.cnf"
openssl x509 -req -in "$dir/tls/server.csr" -CA "$dir/tls/ca.crt" -CAkey "$dir/tls/ca.key" -CAcreateserial -out "$dir/tls/server.crt" -days 2 -extfile "$dir/tls/ext.cnf" 2>/dev/null
chmod 644 "$dir/tls/ca.crt"

cat >"$conf" <<EOF
[global]
fsid = $fsid
mon initial members = a
mon host = [v2:127.0.0.1:$mon2,v1:127.0.0.1:$mon1]
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/admin.keyring
run dir = $dir/run
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
[mon]
mon data = $dir/mon.\$id
paxos propose interval = 0.05
paxos min wait = 0.01
[osd]
osd data = $dir/osd.\$id
keyring = $dir/osd.\$id/keyring
osd objectstore = bluestore
bluestore block create = true
bluestore block size = 21474836480
bluestore fsck on mkfs = false
[client.rgw.a]
keyring = $dir/rgw.keyring
rgw data = $dir/rgw
rgw frontends = beast ssl_endpoint=127.0.0.1:$https tcp_nodelay=1 ssl_certificate=$dir/tls/server.crt ssl_private_key=$dir/tls/server.key
rgw dns name = localhost
EOF

trap 'stop' ERR

ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$dir/admin.keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/admin.keyring" >/dev/null
monmaptool --create --addv a "[v2:127.0.0.1:$mon2,v1:127.0.0.1:$mon1]" --fsid "$fsid" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/mon.keyring"
setsid ceph-mon -c "$conf" -i a -f </dev/null >>"$dir/log/mon.out" 2>&1 &
echo $! >>"$dir/pids"

osd_uuid=$(uuidgen)
osd_secret=$(ceph-authtool --gen-print-key)
echo "{\"cephx_secret\": \"$osd_secret\"}" >"$dir/osd.json"
osd_id=$(timeout 60 ceph -c "$conf" osd new "$osd_uuid" -i "$dir/osd.json")
ceph-authtool --create-keyring "$dir/osd.$osd_id/keyring" --name "osd.$osd_id" --add-key "$osd_secret" >/dev/null
ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >>"$dir/log/osd-mkfs.out" 2>&1
setsid ceph-osd -c "$conf" -i "$osd_id" -f </dev/null >>"$dir/log/osd.out" 2>&1 &
echo $! >>"$dir/pids"

timeout 60 ceph -c "$conf" auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' -o "$dir/rgw.keyring" >/dev/null
setsid radosgw -c "$conf" -n client.rgw.a -f </dev/null >>"$dir/log/rgw.out" 2>&1 &
echo $! >>"$dir/pids"

for _ in $(seq 600); do
  curl -s -o /dev/null --cacert "$dir/tls/ca.crt" "https://localhost:$https/" && break
  sleep 0.1
done
curl -s -o /dev/null --cacert "$dir/tls/ca.crt" "https://localhost:$https/"

access=$(openssl rand -hex 10 | tr 'a-f' 'A-F')
secret=$(openssl rand -hex 20)
radosgw-admin -c "$conf" -n client.admin user create --uid=pgmam --display-name=pgmam --access-key="$access" --secret="$secret" >/dev/null
# A key file as `pgmam repo add --s3-key-file` takes it.
umask 077
printf 'access-key = %s\nsecret-key = %s\n' "$access" "$secret" >"$dir/s3.key"
umask 022

# The bucket: pgBackRest does not create one. (curl 7.88 signs a PUT only with the payload hash header.)
curl -sf --cacert "$dir/tls/ca.crt" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$access:$secret" \
  -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -X PUT "https://localhost:$https/pgbackrest" >/dev/null

cat >"$dir/env" <<EOF
endpoint=localhost:$https
port=$https
bucket=pgbackrest
ca=$dir/tls/ca.crt
key=$dir/s3.key
access=$access
secret=$secret
EOF
