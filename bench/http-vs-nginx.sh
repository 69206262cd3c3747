#!/usr/bin/env bash
# HTTP cache throughput/latency of bazel-cache (storage_mode zstd and uncompressed) against nginx WebDAV,
# measured in the same run by the same load generator (io.bazelcache.bench.HttpLoadBench) with the same blobs.
#
#   bench/http-vs-nginx.sh [--quick] [--keep] [--only TEST,TEST] [--seed N]
#
#   --quick  small counts and 2 s per test (about a minute and a half): checks that the tooling works
#   --keep   keep the servers' data dirs and logs under /tmp (printed at the end)
#   --only   run only some tests (ids: put-4k get-4k miss put-1m get-1m put-64m get-64m put-text
#            get-text-zstd); --seed changes the blobs. Both are passed to the load generator.
#
# Env: NGINX_WEBDAV (default /work/shared/tools/nginx-webdav-cache.sh), BC_JAVA_OPTS (bazel-cache JVM
# options, default none), BENCH_JAVA_OPTS (load generator JVM options, default -Xmx2g).
# Needs nginx with WebDAV: apt-get install -y nginx-light libnginx-mod-http-dav-ext
# Everything listens on 127.0.0.1 only; the table is printed and saved to target/http-vs-nginx-<time>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=
KEEP=
GEN_ARGS=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=--quick ;;
    --keep) KEEP=1 ;;
    --only|--seed) [[ $# -ge 2 ]] || { echo "$1 needs a value" >&2; exit 2; }; GEN_ARGS+=("$1" "$2"); shift ;;
    *) echo "usage: $0 [--quick] [--keep] [--only TEST,...] [--seed N]" >&2; exit 2 ;;
  esac
  shift
done

NGINX_WEBDAV=${NGINX_WEBDAV:-/work/shared/tools/nginx-webdav-cache.sh}
[[ -x $NGINX_WEBDAV ]] || { echo "nginx WebDAV start script not found: $NGINX_WEBDAV" >&2; exit 3; }
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 3; }
. scripts/find-jdk.sh

# 1. The shaded jar, rebuilt when missing or older than any main source or the pom.
jar=$(ls target/bazel-cache-*-all.jar 2>/dev/null | head -1 || true)
if [[ -z $jar ]] || [[ -n $(find src/main pom.xml -newer "$jar" -type f 2>/dev/null | head -1) ]]; then
  echo "building the shaded jar..."
  ./mvnw -B -q -DskipTests package
  jar=$(ls target/bazel-cache-*-all.jar | head -1)
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

WORK=$(mktemp -d /tmp/http-vs-nginx.XXXXXX)
chmod 755 "$WORK" # nginx workers run as nobody and must reach their data dir
NGINX_PORT=$(free_port)
NGINX_PID=
BC_PIDS=()

cleanup() {
  set +e
  if [[ -n $NGINX_PID ]]; then
    "$NGINX_WEBDAV" stop "$NGINX_PORT" "$WORK/nginx" >/dev/null
  fi
  for p in "${BC_PIDS[@]}"; do
    kill "$p" 2>/dev/null
  done
  for p in "${BC_PIDS[@]}"; do
    wait "$p" 2>/dev/null
  done
  if [[ -z $KEEP ]]; then
    rm -rf "$WORK"
  else
    echo "kept data and logs in $WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 2. nginx WebDAV (sendfile on, 2 workers, access log on).
NGINX_PID=$("$NGINX_WEBDAV" start "$NGINX_PORT" "$WORK/nginx")
nginx_pids=$NGINX_PID
for c in $(pgrep -P "$NGINX_PID" || true); do nginx_pids+=",$c"; done
echo "nginx WebDAV on 127.0.0.1:$NGINX_PORT, pids $nginx_pids"

# 3. bazel-cache, once per storage mode, each with its own port and data dir.
declare -A BC_PORT BC_PID
for mode in zstd uncompressed; do
  port=$(free_port)
  mkdir -p "$WORK/bc-$mode"
  # shellcheck disable=SC2086
  "$JAVA_HOME/bin/java" ${BC_JAVA_OPTS:-} -jar "$jar" --dir "$WORK/bc-$mode/data" --max_size 20 \
    --http_address "127.0.0.1:$port" --grpc_address none --storage_mode "$mode" \
    >"$WORK/bc-$mode/server.log" 2>&1 &
  BC_PIDS+=($!)
  BC_PORT[$mode]=$port
  BC_PID[$mode]=$!
done
for mode in zstd uncompressed; do
  for _ in $(seq 1 300); do
    curl -sf -o /dev/null "http://127.0.0.1:${BC_PORT[$mode]}/status" && break
    kill -0 "${BC_PID[$mode]}" 2>/dev/null || { echo "bazel-cache ($mode) exited:" >&2; cat "$WORK/bc-$mode/server.log" >&2; exit 1; }
    sleep 0.2
  done
  curl -sf -o /dev/null "http://127.0.0.1:${BC_PORT[$mode]}/status" \
    || { echo "bazel-cache ($mode) did not start listening" >&2; exit 1; }
  echo "bazel-cache storage_mode=$mode on 127.0.0.1:${BC_PORT[$mode]}, pid ${BC_PID[$mode]}"
done

# 4. The measurement: every test runs against nginx, then both bazel-cache modes, interleaved.
mkdir -p target
out="$ROOT/target/http-vs-nginx-$(date +%Y%m%d-%H%M%S).md"
set +e
bench/run.sh HttpLoadBench $QUICK "${GEN_ARGS[@]}" --out "$out" \
  --target "nginx=http://127.0.0.1:$NGINX_PORT" \
  --target "bc-zstd=http://127.0.0.1:${BC_PORT[zstd]}" \
  --target "bc-uncompressed=http://127.0.0.1:${BC_PORT[uncompressed]}" \
  --pids "nginx=$nginx_pids" --pids "bc-zstd=${BC_PID[zstd]}" --pids "bc-uncompressed=${BC_PID[uncompressed]}"
rc=$?
set -e
du -sh "$WORK/nginx/data" "$WORK/bc-zstd/data" "$WORK/bc-uncompressed/data" 2>/dev/null || true
[[ -s $out ]] && echo "table saved to $out"
exit $rc
