#!/usr/bin/env bash
# Runs the built image without a container engine and checks it works, the way the Deployment runs it:
#
#   * the image tar is unpacked (unpack-image.py) into target/image/smoke/rootfs;
#   * the module's config.yaml (deploy/tofu/modules/bazel-cache/config.yaml.tftpl rendered with the module's
#     defaults, the S3 endpoint pointed at a local S3Proxy) goes to /etc/bazel-remote/config.yaml;
#   * in fresh network, mount and PID namespaces (`unshare --net --mount --pid --fork`; only loopback exists),
#     /proc is mounted in the root filesystem, S3Proxy runs on 127.0.0.1:9000, and the image's entrypoint
#     runs under `chroot --userspec=1000:1000` with the image's environment plus the S3 secret variables and
#     the Deployment's args (--config_file=/etc/bazel-remote/config.yaml);
#   * checks: /status 200, PUT and GET of a CAS blob, gRPC port open, SIGTERM -> /status 503 -> exit 0, and
#     the blob is in the bucket afterwards (the upload queue drained).
#
# Needs root (unshare, chroot, mount). Usage: deploy/image/smoke-test.sh [IMAGE.tar]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$(cd "$here/../.." && pwd)"
image="${1:-$project/target/image/bazel-cache-image.tar}"
work="$project/target/image/smoke"
rootfs="$work/rootfs"
s3jar="$project/target/s3proxy/s3proxy.jar"
. "$project/scripts/find-jdk.sh" # host java for S3Proxy only

[ -f "$image" ] || { echo "no image at $image: run deploy/image/build-image.sh" >&2; exit 1; }
[ -f "$s3jar" ] || { echo "no $s3jar: run ./mvnw -B -q process-test-resources" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work/s3/bazel-cache"
python3 "$here/unpack-image.py" "$image" "$rootfs"

# The module's config, rendered as OpenTofu would with the defaults (every value JSON-encoded).
# SMOKE_DROP_KEYS="k1 k2" leaves top-level keys out (for builds that do not support them yet).
python3 - "$project/deploy/tofu/modules/bazel-cache/config.yaml.tftpl" "$rootfs/etc/bazel-remote/config.yaml" \
  ${SMOKE_DROP_KEYS:-} <<'PY'
import json, re, sys
values = {"dir": "/data", "max_size": 8, "http_address": "0.0.0.0:8080", "grpc_address": "0.0.0.0:9092",
          "s3_endpoint": "127.0.0.1:9000", "s3_bucket": "bazel-cache", "s3_prefix": "", "s3_disable_ssl": True,
          "s3_bucket_lookup_type": "path", "s3_max_idle_conns": 1024, "s3_update_timestamps": True,
          "num_uploaders": 100, "max_queued_uploads": 1000000, "enable_metrics": True,
          "access_log_level": "none", "shutdown_delay": "2s"}
text = open(sys.argv[1]).read()
out = re.sub(r"\$\{([a-z0-9_]+)\}", lambda m: json.dumps(values[m.group(1)]), text)
drop = tuple(k + ":" for k in sys.argv[3:])
out = "".join(line for line in out.splitlines(True) if not line.startswith(drop))
open(sys.argv[2], "w").write(out)
PY

cat > "$work/s3proxy.properties" <<EOF2
s3proxy.endpoint=http://127.0.0.1:9000
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=smoke-access-key
s3proxy.credential=smoke-secret-key
jclouds.provider=filesystem
jclouds.filesystem.basedir=$work/s3
EOF2

# Runs inside the new namespaces.
cat > "$work/inside.sh" <<'INSIDE'
set -euo pipefail
work="$1"; rootfs="$work/rootfs"; s3jar="$2"; java="$3"
ip link set lo up
mount -t proc proc "$rootfs/proc"
"$java" -Xmx256m -jar "$s3jar" --properties "$work/s3proxy.properties" > "$work/s3proxy.log" 2>&1 &
s3pid=$!
for i in $(seq 1 300); do curl -s -o /dev/null http://127.0.0.1:9000/ && break; sleep 0.2; done

# The image's entrypoint and environment (from its config; the image has no shell, so no cd to WorkingDir), the Deployment's args and secret variables.
mapfile -t entrypoint < <(python3 -c 'import json,sys; [print(a) for a in json.load(open(sys.argv[1]))["config"]["Entrypoint"]]' "$rootfs.config.json")
mapfile -t imageenv < <(python3 -c 'import json,sys; [print(a) for a in json.load(open(sys.argv[1]))["config"]["Env"]]' "$rootfs.config.json")
user="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["config"]["User"])' "$rootfs.config.json")"
chroot="$(command -v chroot)"
env -i "${imageenv[@]}" HOME=/data \
  BAZEL_REMOTE_S3_ACCESS_KEY_ID=smoke-access-key BAZEL_REMOTE_S3_SECRET_ACCESS_KEY=smoke-secret-key \
  "$chroot" --userspec="$user" "$rootfs" \
  "${entrypoint[@]}" --config_file=/etc/bazel-remote/config.yaml > "$work/server.log" 2>&1 &
srv=$!
code=000
for i in $(seq 1 300); do
  code="$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/status || true)"
  [ "$code" = 200 ] && break
  kill -0 "$srv" 2>/dev/null || break
  sleep 0.2
done
[ "$code" = 200 ] || { echo "FAIL: /status answered $code"; cat "$work/server.log"; exit 1; }
echo "ok: /status 200 (server pid $srv, user $user)"
echo "ok: process $(tr '\0' ' ' < "/proc/$srv/cmdline" | cut -c1-60)... runs as $(awk '/^Uid:/ {u=$2} /^Gid:/ {g=$2} END {print "uid " u ", gid " g}' "/proc/$srv/status")"

printf 'smoke test blob\n' > "$work/blob"
hash="$(sha256sum "$work/blob" | cut -d' ' -f1)"
put="$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$work/blob" "http://127.0.0.1:8080/cas/$hash")"
[ "$put" = 200 ] || { echo "FAIL: PUT $put"; exit 1; }
curl -sf "http://127.0.0.1:8080/cas/$hash" | cmp - "$work/blob" && echo "ok: PUT and GET /cas/$hash"
(exec 3<>/dev/tcp/127.0.0.1/9092) && echo "ok: gRPC port 9092 open"

kill -TERM "$srv"
sleep 0.5
code="$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/status || true)"
[ "$code" = 503 ] && echo "ok: /status 503 after SIGTERM" || { echo "FAIL: /status $code after SIGTERM"; exit 1; }
set +e; wait "$srv"; rc=$?; set -e
[ "$rc" = 0 ] && echo "ok: exit status 0 after SIGTERM" || { echo "FAIL: exit status $rc"; cat "$work/server.log"; exit 1; }
objects="$(find "$work/s3/bazel-cache" -type f | wc -l)"
[ "$objects" -ge 1 ] && echo "ok: $objects object(s) in the bucket" || { echo "FAIL: nothing uploaded"; exit 1; }
kill "$s3pid"; wait "$s3pid" 2>/dev/null || true
umount "$rootfs/proc"
INSIDE

unshare --net --mount --pid --fork --mount-proc bash "$work/inside.sh" "$work" "$s3jar" "$JAVA_HOME/bin/java"
echo "smoke test passed; logs in $work"
