#!/usr/bin/env bash
# Fill a deploy/ template's {{NAME}} placeholders: render.sh TEMPLATE NAME=value ... > output
# Fails (naming them) when a placeholder is left without a value. Used by install.sh and by the
# deployment tests, so the tests run exactly the files a user installs.
set -euo pipefail
template="${1:?usage: render.sh TEMPLATE NAME=value ...}"
shift
content="$(cat "$template")"
for pair in "$@"; do
  name="${pair%%=*}"
  value="${pair#*=}"
  content="${content//"{{$name}}"/$value}"
done
left="$(grep -o '{{[A-Z_]*}}' <<<"$content" | sort -u | tr '\n' ' ' || true)"
if [ -n "$left" ]; then
  echo "render.sh: $template: no value for $left" >&2
  exit 1
fi
printf '%s\n' "$content"
