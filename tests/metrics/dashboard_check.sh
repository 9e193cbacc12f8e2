#!/usr/bin/env bash
# Checks that every query of docs/grafana-dashboard.json is valid PromQL and names
# only metrics documented in docs/metrics.md: the queries become recording rules
# that `promtool check rules` parses (Grafana's $__rate_interval becomes 5m).
# Usage: dashboard_check.sh REPO_ROOT
set -euo pipefail
root=$1
dashboard=$root/docs/grafana-dashboard.json
command -v promtool >/dev/null || { echo "promtool not installed (Debian package prometheus)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
  echo "groups:"
  echo "  - name: cambium-dashboard"
  echo "    rules:"
  i=0
  while IFS= read -r expr; do
    i=$((i + 1))
    echo "      - record: cambium:dashboard_query_$i"
    printf '        expr: %s\n' "$(jq -Rn --arg e "${expr//\$__rate_interval/5m}" '$e')"
  done < <(jq -r '.panels[].targets[].expr' "$dashboard")
} >"$tmp/rules.yml"
promtool check rules "$tmp/rules.yml"
# Every cambium_* metric a query names is documented.
missing=0
for m in $(jq -r '.panels[].targets[].expr' "$dashboard" | grep -oE 'cambium_[a-z_]+' | sed -E 's/_(bucket|sum|count)$//' | sort -u); do
  if ! grep -q "\`$m" "$root/docs/metrics.md"; then
    echo "dashboard uses $m, which docs/metrics.md does not list"
    missing=1
  fi
done
exit $missing
