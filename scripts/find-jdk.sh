# Sourced by ./mvnw and ./bazel-cache: exports JAVA_HOME pointing at a JDK >= 21.
# Keeps a JAVA_HOME that is already new enough; otherwise picks the newest JDK under /usr/lib/jvm.
bc_java_major() {
  "$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1
}
if [ -z "${JAVA_HOME:-}" ] || [ ! -x "$JAVA_HOME/bin/java" ] || [ "$(bc_java_major "$JAVA_HOME")" -lt 21 ] 2>/dev/null; then
  for bc_jdk in /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*25* /usr/lib/jvm/*21* /usr/lib/jvm/*; do
    if [ -x "$bc_jdk/bin/javac" ] && [ "$(bc_java_major "$bc_jdk")" -ge 21 ] 2>/dev/null; then
      JAVA_HOME=$bc_jdk; export JAVA_HOME; break
    fi
  done
fi
if [ -z "${JAVA_HOME:-}" ] || [ "$(bc_java_major "$JAVA_HOME")" -lt 21 ] 2>/dev/null; then
  echo "bazel-cache needs a JDK 21 or newer; set JAVA_HOME" >&2
  exit 1
fi
