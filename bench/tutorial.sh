#!/usr/bin/env bash
# The seed tutorial ("a secure etcd cluster") done by hand with openssl, etcd and etcdctl, with
# the changes current etcd needs: --trusted-ca-file and --peer-trusted-ca-file instead of the
# removed --ca-file/--peer-ca-file, certificates with SANs and extended key usages instead of a
# bare CN, and the v3 etcdctl. One run per call; bench/run times it beside etcdscript's demo.
#
#   bench/tutorial.sh                 as the tutorial does it: RSA 2048 keys, etcd's default
#                                     heartbeat and election timeout, `killall`-style SIGTERM
#   MODE=tuned bench/tutorial.sh      the fastest a shell gets: EC P-256 keys, 10/100 ms
#                                     heartbeat/election, SIGKILL at the end
#
# ETCD and ETCDCTL name the binaries (default: from PATH). Ports are the tutorial's own:
# clients 23791-23793, peers 23801-23803.
set -euo pipefail
ETCD=${ETCD:-etcd}
ETCDCTL=${ETCDCTL:-etcdctl}
MODE=${MODE:-faithful}

case "$MODE" in
  faithful) key() { openssl genrsa -out "$1" 2048 2>/dev/null; }; timing=(); stop=TERM ;;
  tuned) key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }
         timing=(--heartbeat-interval 10 --election-timeout 100); stop=KILL ;;
  *) echo "MODE must be faithful or tuned" >&2; exit 2 ;;
esac

dir=$(mktemp -d)
members=()
finish() {
  for pid in "${members[@]}"; do kill -s "$stop" "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap finish EXIT
cd "$dir"

# The CA, one server certificate shared by the members (serving and dialing peers), one client.
sign() { # name subject extensions
  key "$1.key"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
  printf '%b' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}
key ca.key
openssl req -x509 -new -key ca.key -subj /CN=we-as-ca -days 3650 -out ca.crt 2>/dev/null
sign server /CN=localhost 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n'
sign client /CN=client 'extendedKeyUsage=clientAuth\n'

# etcd.bash: three members, mutual TLS with clients and between peers.
peers=infra1=https://localhost:23801,infra2=https://localhost:23802,infra3=https://localhost:23803
for i in 1 2 3; do
  "$ETCD" --name "infra$i" --data-dir "infra$i.etcd" "${timing[@]}" \
    --listen-client-urls "https://localhost:2379$i" --advertise-client-urls "https://localhost:2379$i" \
    --cert-file server.crt --key-file server.key --trusted-ca-file ca.crt --client-cert-auth \
    --listen-peer-urls "https://localhost:2380$i" --initial-advertise-peer-urls "https://localhost:2380$i" \
    --peer-cert-file server.crt --peer-key-file server.key --peer-trusted-ca-file ca.crt --peer-client-cert-auth \
    --initial-cluster "$peers" --initial-cluster-token etcd-for-k8sp-tls-demo --initial-cluster-state new \
    > "infra$i.log" 2>&1 &
  members+=($!)
done

ctl() { ETCDCTL_API=3 "$ETCDCTL" --dial-timeout 1s --command-timeout 1s "$@"; }
with_cert=(--cacert ca.crt --cert client.crt --key client.key)

# The tutorial's `set hello world`, retried until the cluster is up.
until ctl --endpoints https://localhost:23791 "${with_cert[@]}" put hello world >/dev/null 2>&1; do
  sleep 0.05
done
[ "$(ctl --endpoints https://localhost:23792 "${with_cert[@]}" get hello --print-value-only)" = world ]
# Without a client certificate the member must refuse.
if ctl --endpoints https://localhost:23791 --cacert ca.crt put foo bar >/dev/null 2>&1; then
  echo "a client without a certificate was served" >&2
  exit 1
fi
echo ok
