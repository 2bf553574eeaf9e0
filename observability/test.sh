#!/usr/bin/env bash
# Tests of observability/: promtool checks of the rules and scrape configs, promtool unit
# tests of every alert, and check.py (PromQL in rules and dashboards parses and uses only
# known metric names; runbooks; relabelling; dashboards; OTel collector config).
#
# Needs promtool (Debian: apt-get install prometheus) and python3 with PyYAML (Debian:
# apt-get install python3-yaml). Prints one line per check and, last, "N passed, M failed";
# exits non-zero when anything failed.
set -u
cd "$(dirname "$0")" || exit 2

passed=0
failed=0

check() { # name command...
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        passed=$((passed + 1))
        echo "ok   $name"
    else
        failed=$((failed + 1))
        echo "FAIL $name"
        printf '%s\n' "$out" | sed 's/^/     /'
    fi
}

if ! command -v promtool >/dev/null 2>&1; then
    echo "FAIL promtool not found: install it with 'apt-get install -y prometheus' (make deps)"
    echo "0 passed, 1 failed"
    exit 1
fi
PYTHON=""
for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import yaml' 2>/dev/null; then
        PYTHON=$py
        break
    fi
done
if [ -z "$PYTHON" ]; then
    echo "FAIL python3 with PyYAML not found: install it with 'apt-get install -y python3-yaml' (make deps)"
    echo "0 passed, 1 failed"
    exit 1
fi

check "promtool check rules prometheus/rules/*.yml" promtool check rules prometheus/rules/*.yml
for t in prometheus/tests/*.yml; do
    check "promtool test rules $t" promtool test rules "$t"
done
check "promtool check config prometheus/devnet-scrape.yml" \
    promtool check config prometheus/devnet-scrape.yml
# kubernetes-scrape.yml is checked by check.py: Debian's promtool lacks Kubernetes SD.

result=$(mktemp)
trap 'rm -f "$result"' EXIT
"$PYTHON" check.py | tee "$result" | grep -v '^RESULT '
read -r _ p f < <(grep '^RESULT ' "$result" || echo "RESULT 0 1")
if ! grep -q '^RESULT ' "$result"; then
    echo "FAIL check.py did not finish"
fi
passed=$((passed + p))
failed=$((failed + f))

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
