#!/usr/bin/env bash
# Every chart check, with no cluster and no network:
#   1. helm lint --strict, and helm template (with the CRDs of crds/, when a
#      chart has them) validated by kubernetes-validate --strict against
#      Kubernetes $K8S_VERSION, for every chart over its ci/*-values.yaml
#      (defaults, everything on, Hebei) and the Hebei examples;
#   2. the unit tests over the rendered YAML, the Dockerfile and the operator's
#      examples (unit.py); it lists any test it skipped, and why.
# Ends with "N passed, M failed" (", K skipped" when a test was skipped);
# exits non-zero on any failure.
# Tools: tests/charts/install-tools.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."

K8S_VERSION="${K8S_VERSION:-1.31.0}"   # kubernetes-validate 1.37.0 ships schemas for 1.25 .. 1.37
export K8S_VERSION PYTHONDONTWRITEBYTECODE=1
passed=0
failed=0
skipped=0
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

for tool in helm kubernetes-validate python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "run.sh: $tool is missing; run tests/charts/install-tools.sh" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
done

check() {  # check NAME COMMAND...: one counted check; prints the output of a failure
  local name="$1"; shift
  if out="$("$@" 2>&1)"; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
    sed 's/^/     /' <<<"$out"
  fi
}

render_and_validate() {  # chart release values: helm template | kubernetes-validate
  local out="$tmp/$2-$(basename "$3")"
  helm template "$2" "charts/$1" -n fiscus -f "$3" --kube-version "$K8S_VERSION" --include-crds >"$out" || return 1
  # --no-warn: the ServiceMonitor CRD has no schema here; unit tests check it instead.
  kubernetes-validate --strict --quiet --no-warn -k "$K8S_VERSION" "$out"
}

# A validator that accepts everything proves nothing: this must be refused.
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {typo: 1, ports: [{port: 80}]}\n' >"$tmp/bad.yaml"
check "kubernetes-validate refuses an unknown field" bash -c "! kubernetes-validate --strict --quiet -k $K8S_VERSION $tmp/bad.yaml"

for chart in fiscus-ca fiscus-orderer fiscus-member fiscus-operator; do
  files=(charts/$chart/ci/*-values.yaml)
  if [ "$chart" = fiscus-member ]; then files+=(k8s/examples/hebei/member-*.yaml); fi
  declare -A seen=()
  for f in "${files[@]}"; do
    real="$(realpath "$f")"; [ -n "${seen[$real]:-}" ] && continue; seen[$real]=1
    case "$f" in *member-[0-9]*) release="fiscus-$(basename "$f" .yaml | cut -d- -f2)";;
                 *) release="${chart/fiscus-member/fiscus-130000}";; esac
    check "helm lint --strict $chart -f $f" helm lint --strict --kube-version "$K8S_VERSION" "charts/$chart" -f "$f"
    check "kubernetes-validate $K8S_VERSION $chart -f $f" render_and_validate "$chart" "$release" "$f"
  done
  unset seen
done

unit_out="$tmp/unit.txt"
python3 tests/charts/unit.py 2>&1 | tee "$unit_out" | grep -v '^unit: '
summary="$(grep '^unit: ' "$unit_out" | tail -1)"
if [[ "$summary" =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)? ]]; then
  passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2])); skipped=$((skipped + ${BASH_REMATCH[4]:-0}))
else
  echo "run.sh: the unit tests did not report" >&2; failed=$((failed + 1))
fi

echo "$passed passed, $failed failed$([ "$skipped" -eq 0 ] || echo ", $skipped skipped")"
[ "$failed" -eq 0 ]
