#!/usr/bin/env bash
# Builds the bazel-cache OCI image offline, as a tar (no registry, no container engine):
#
#   1. a base image: a jlinked Java 25 runtime (from the Temurin JDK on this machine) plus the few glibc
#      libraries it links against, an /etc/passwd with uid/gid 1000, /data and /tmp; written in `docker save`
#      format by make-base-tar.py;
#   2. jib (jib-maven-plugin, profile `image`) puts the application on top: user 1000:1000, ports 8080 and
#      9092, /data, entrypoint `java ... io.bazelcache.server.Main`.
#
# Output: target/image/bazel-cache-image.tar (load with `docker load -i`, `podman load -i`, `skopeo copy
# docker-archive:...`, or `crane push`). deploy/README.md shows how to run it here with chroot.
#
# Usage: deploy/image/build-image.sh            (needs root for the numeric owners of the base layer)
#        JDK=/path/to/jdk deploy/image/build-image.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$(cd "$here/../.." && pwd)"
JDK="${JDK:-$(. "$project/scripts/find-jdk.sh" && echo "$JAVA_HOME")}"
out="$project/target/image"
rootfs="$out/rootfs"
base="$out/base.tar"

# Modules the server needs: netty/grpc/protobuf (jdk.unsupported), the AWS SDK and logback (java.xml,
# java.naming, java.net.http, java.desktop for java.beans), Prometheus JVM metrics (java.management,
# jdk.management), TLS (java.base's providers, jdk.crypto.cryptoki not needed).
MODULES="java.base,java.logging,java.management,jdk.management,java.naming,jdk.naming.dns,java.net.http,\
java.security.jgss,java.security.sasl,java.sql,java.xml,java.desktop,jdk.unsupported,jdk.zipfs"

echo "== base image: jlink ($JDK) into $rootfs"
rm -rf "$rootfs"
mkdir -p "$rootfs"/{opt,etc,tmp,data,proc,dev,etc/bazel-remote,lib64,lib/x86_64-linux-gnu}
"$JDK/bin/jlink" --add-modules "$MODULES" --strip-debug --no-man-pages --no-header-files \
  --compress=zip-6 --output "$rootfs/opt/java"

# The shared libraries the runtime links against (glibc and friends), copied from this machine (Debian
# bookworm). X11/ALSA libraries of java.desktop are left out: the server runs headless.
find "$rootfs/opt/java" -type f \( -name '*.so' -o -path '*/bin/*' \) -print0 \
  | xargs -0 ldd 2>/dev/null | awk '/=> \// {print $3} /^\s*\/lib64/ {print $1}' | sort -u \
  | grep -Ev 'libX|libxcb|libasound|libfreetype|libbsd|libmd\.' \
  | while read -r lib; do
      case "$lib" in "$rootfs"/*) continue ;; esac # the runtime's own libraries
      [ -e "$lib" ] || continue
      real="$(readlink -f "$lib")"
      mkdir -p "$rootfs$(dirname "$lib")"
      cp -L "$real" "$rootfs$lib"
    done
cp -L /lib64/ld-linux-x86-64.so.2 "$rootfs/lib64/"

cat > "$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
bazel-cache:x:1000:1000:bazel-cache:/data:/sbin/nologin
PASSWD
cat > "$rootfs/etc/group" <<'GROUP'
root:x:0:
bazel-cache:x:1000:
GROUP
echo 'hosts: files dns' > "$rootfs/etc/nsswitch.conf"
chmod 1777 "$rootfs/tmp"
chown 1000:1000 "$rootfs/data"

python3 "$here/make-base-tar.py" "$rootfs" "$base" \
  --env PATH=/opt/java/bin:/usr/bin:/bin --env JAVA_HOME=/opt/java

echo "== application layers: jib"
cd "$project"
./mvnw -B -q -Pimage -DskipTests -Djib.from.image="tar://$base" package jib:buildTar
ls -l "$out/bazel-cache-image.tar"
