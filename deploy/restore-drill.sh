#!/usr/bin/env bash
# The restore drill (docs/operations/restore.md): recovers the backups of
# onedoor-pg into a new cluster, onedoor-pg-drill, as of TARGET_TIME, then
# checks the copy:
#   1. every database has the events production had committed a minute
#      before the target time (counts compared per database);
#   2. intake's case views rebuilt from the copy's events (a drill intake on
#      the copy, the operators' rebuild) give one view per case stream, as
#      many as the copy held before the rebuild.
# Usage: OPERATOR_TOKEN=... deploy/restore-drill.sh '2026-11-26 08:00:00+08' [--keep]
# Needs kubectl with rights in the namespace onedoor, curl, and an
# operator's token. Leaves production untouched; deletes the drill's
# resources at the end unless --keep.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: OPERATOR_TOKEN=... $0 '<target time, e.g. 2026-11-26 08:00:00+08>' [--keep]" >&2
  exit 2
fi
target=$1
keep=${2:-}
ns=onedoor
here=$(cd "$(dirname "$0")" && pwd)
databases=(onedoor_intake onedoor_medical onedoor_education onedoor_housing onedoor_temporary)

psql_in() { # cluster database sql
  kubectl -n "$ns" exec "$1-1" -c postgres -- psql -qAt -d "$2" -c "$3"
}

echo "== recovering onedoor-pg as of $target into onedoor-pg-drill"
postgres_image=$(kubectl -n "$ns" get cluster onedoor-pg -o jsonpath='{.spec.imageName}')
onedoor_image=$(kubectl -n "$ns" get deploy intake -o jsonpath='{.spec.template.spec.containers[0].image}')
sed -e "s|TARGET_TIME|$target|" -e "s|POSTGRES_IMAGE|$postgres_image|" -e "s|ONEDOOR_IMAGE|$onedoor_image|" \
  "$here/restore/drill-cluster.yaml" | kubectl apply -f -
kubectl -n "$ns" wait --for=condition=Ready cluster/onedoor-pg-drill --timeout=60m

failed=0
echo "== events committed before $target minus a minute, production vs drill"
for db in "${databases[@]}"; do
  before="SELECT count(*) FROM events WHERE recorded_at < timestamptz '$target' - interval '1 minute'"
  prod=$(psql_in onedoor-pg "$db" "$before")
  drill=$(psql_in onedoor-pg-drill "$db" "$before")
  printf '%-20s production %10s  drill %10s\n' "$db" "$prod" "$drill"
  [[ "$prod" == "$drill" ]] || failed=1
done

echo "== intake's case views rebuilt from the drill's events (operators' API)"
: "${OPERATOR_TOKEN:?set OPERATOR_TOKEN to a bearer token of the operator role from the identity provider}"
views_before=$(psql_in onedoor-pg-drill onedoor_intake "SELECT count(*) FROM case_views")
cases=$(psql_in onedoor-pg-drill onedoor_intake "SELECT count(DISTINCT stream_id) FROM events WHERE stream_type = 'case'")
kubectl -n "$ns" wait --for=condition=Ready pod/onedoor-drill-intake --timeout=10m
kubectl -n "$ns" port-forward pod/onedoor-drill-intake 18080:8080 >/dev/null &
forward=$!
trap 'kill $forward 2>/dev/null || true' EXIT
sleep 3
job=$(curl -fsS -X POST -H "Authorization: Bearer $OPERATOR_TOKEN" \
  http://127.0.0.1:18080/api/v1/admin/case-views/rebuild | sed -n 's/.*"job_id" *: *"\([^"]*\)".*/\1/p')
until curl -fsS -H "Authorization: Bearer $OPERATOR_TOKEN" \
  "http://127.0.0.1:18080/api/v1/admin/case-views/rebuild/$job" | grep -q '"status" *: *"\(done\|failed\)"'; do
  sleep 5
done
curl -fsS -H "Authorization: Bearer $OPERATOR_TOKEN" "http://127.0.0.1:18080/api/v1/admin/case-views/rebuild/$job"
echo
views_after=$(psql_in onedoor-pg-drill onedoor_intake "SELECT count(*) FROM case_views")
printf 'case views: before the rebuild %s, after %s; case streams in the events %s\n' \
  "$views_before" "$views_after" "$cases"
[[ "$views_before" == "$views_after" && "$views_after" == "$cases" ]] || failed=1

if [[ "$keep" != "--keep" ]]; then
  kubectl -n "$ns" delete pod/onedoor-drill-intake networkpolicy/onedoor-drill-intake \
    cluster/onedoor-pg-drill networkpolicy/onedoor-pg-drill
fi
if [[ $failed -ne 0 ]]; then
  echo "RESTORE DRILL FAILED: the copy differs (see above)" >&2
  exit 1
fi
echo "restore drill passed"
