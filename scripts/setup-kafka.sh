#!/usr/bin/env bash
# Installs the Kafka broker's jars (org.apache.kafka:kafka_2.13 and what it needs at run time, from Maven
# Central through deploy/kafka/pom.xml) into a per-machine folder, for COSTMESH_STACK_QUEUE=kafka. Nothing
# is downloaded when the broker starts. Skipped when the folder already holds this pom's jars.
set -euo pipefail
cd "$(dirname "$0")/.."

POM=deploy/kafka/pom.xml
VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")
HOME_DIR=${COSTMESH_STACK_KAFKA_HOME:-$HOME/.cache/costmesh/kafka-$VERSION}
LIBS="$HOME_DIR/libs"
STAMP="$HOME_DIR/.pom-sha256"
want=$(sha256sum "$POM" | cut -d' ' -f1)

if [ -f "$LIBS/kafka_2.13-$VERSION.jar" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  echo "kafka: $VERSION in $LIBS"
  exit 0
fi
if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then  # Kafka 4 needs Java 17 or later
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless maven
fi
rm -rf "$LIBS" && mkdir -p "$LIBS"
mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS"
echo "$want" > "$STAMP"
echo "kafka: installed $VERSION ($(ls "$LIBS" | wc -l) jars) in $LIBS"
