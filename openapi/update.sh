#!/usr/bin/env bash
# Replaces openapi/kafka-rest-v3.yaml with Confluent's current Kafka REST v3
# document for Confluent Cloud, but only after the crate has built from it.
#
#   openapi/update.sh
#   KAFKA_REST_OPENAPI_URL=https://…/other.yaml openapi/update.sh
#   KAFKA_REST_OPENAPI_URL=file:///tmp/new.yaml openapi/update.sh
#
# See openapi/README.md for where Confluent publishes the document and what the
# build changes in it.
set -euo pipefail

default_url="https://docs.confluent.io/cloud/current/_spec/ccloud-kafkarest-v3.openapi.yaml"
url="${KAFKA_REST_OPENAPI_URL:-$default_url}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vendored="$root/openapi/kafka-rest-v3.yaml"

die() {
    printf 'update.sh: error: %s\n' "$*" >&2
    exit 1
}

work="$(mktemp -d "${TMPDIR:-/tmp}/kafka-rest-openapi.XXXXXX")"
trap 'rm -rf "$work"' EXIT
candidate="$work/kafka-rest-v3.yaml"

echo "==> Downloading $url"
if command -v curl >/dev/null 2>&1; then
    if ! curl --fail --silent --show-error --location \
        --connect-timeout 20 --max-time 300 --retry 2 \
        --output "$candidate" "$url"; then
        die "could not download $url.
Are you offline? Nothing was changed. If Confluent moved the document, set
KAFKA_REST_OPENAPI_URL to the address of the Download link on
https://docs.confluent.io/cloud/current/api.html (see openapi/README.md)."
    fi
elif command -v wget >/dev/null 2>&1; then
    if ! wget --quiet --timeout=20 --tries=3 --output-document="$candidate" "$url"; then
        die "could not download $url.
Are you offline? Nothing was changed. If Confluent moved the document, set
KAFKA_REST_OPENAPI_URL to the address of the Download link on
https://docs.confluent.io/cloud/current/api.html (see openapi/README.md)."
    fi
else
    die "neither curl nor wget is installed"
fi

[ -s "$candidate" ] || die "the download from $url is empty; nothing was changed"
# A moved document often turns into an HTML page that answers 200.
if ! grep -Eq '^[[:space:]]*"?openapi"?[[:space:]]*:' "$candidate"; then
    die "the download from $url does not look like an OpenAPI document (no \`openapi:\` field); nothing was changed"
fi

if cmp -s "$candidate" "$vendored"; then
    echo "==> openapi/kafka-rest-v3.yaml is already the current document; nothing to do"
    exit 0
fi

echo "==> Building the crate from the downloaded document (openapi/ untouched so far)"
if ! (cd "$root" && KAFKA_REST_OPENAPI="$candidate" cargo build --all-targets); then
    # Keep the document for inspection; the trap would delete it.
    kept="$root/target/kafka-rest-v3.rejected.yaml"
    mkdir -p "$root/target"
    cp "$candidate" "$kept"
    die "the crate does not build from the new document; openapi/kafka-rest-v3.yaml was not changed.
The document was kept at $kept. Read the build output above and openapi/README.md."
fi

cp "$candidate" "$vendored"
echo "==> Replaced openapi/kafka-rest-v3.yaml"
cat <<EOF

Next steps:
  1. cargo test                     (the build warnings list the repairs made)
  2. If tests/normalize.rs expects different repairs now, check each new one
     and update the test.
  3. git diff --stat openapi/       and review the change
  4. Commit openapi/kafka-rest-v3.yaml, noting that it came from
     $url
EOF
