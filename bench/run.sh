#!/bin/sh
# Builds with the bench profile and runs one benchmark main class: bench/run.sh <Class> [args...]
# JVM options can be passed in BENCH_JAVA_OPTS (default -Xmx2g).
set -eu
cd "$(dirname "$0")/.."
. scripts/find-jdk.sh
./mvnw -B -q -Pbench compile dependency:build-classpath -Dmdep.outputFile=target/bench-classpath.txt >/dev/null
cls=$1
shift
exec "$JAVA_HOME/bin/java" ${BENCH_JAVA_OPTS:--Xmx2g} --enable-native-access=ALL-UNNAMED \
  -cp "target/classes:$(cat target/bench-classpath.txt)" "io.bazelcache.bench.$cls" "$@"
