#!/usr/bin/env bash
# Standard clients against a devnet with TLS on every external endpoint
# (`fiscus devnet --rest-tls`), as integrators and officials would connect:
#
#   - `openssl s_client -sigalgs ECDSA+SHA256` (a TLS stack offering no Ed25519,
#     like BoringSSL, NSS, Java and Windows) completes a handshake with every
#     externally reachable port: the identity-ca, and every member's
#     exchange-adapter REST and gRPC ports; it is served an ECDSA certificate;
#     without a client certificate the adapter's gRPC port still refuses it, and
#     with a certificate from a foreign CA too;
#   - Python grpcio (gRPC's C core on BoringSSL) submits a signed transaction
#     over Exchange.SubmitStream and reads it back with GetTxStatus, with the
#     member's ECDSA client certificate and with its Ed25519 one, and calls the
#     identity-ca (IdentityCa.GetCrl) with that certificate and without one;
#   - headless Chromium loads the adapter's /docs page over TLS and renders it
#     (the page builds itself from /openapi.json); the screenshot is kept in
#     target/interop/docs.png.
#
# The ECDSA certificates are issued by the consortium's ECDSA P-256 TLS root
# (the Ed25519 root issues the rest), so every client here verifies the chain
# against the roots an enrolled identity gets in its ca.pem. Chromium trusts
# the TLS root the way an official's workstation would: installed in its NSS
# database (certutil, under a HOME of its own), with no flag that ignores or
# pins anything; that it refuses the page without the root installed is checked.
#
# `make test` calls it after the cargo tests (it uses target/debug/fiscus).
#   FISCUS_BIN   the fiscus binary (default target/debug/fiscus)
set -euo pipefail
cd "$(dirname "$0")/../.."

FISCUS_BIN="${FISCUS_BIN:-target/debug/fiscus}"
OUT_DIR="target/interop"
passed=0
failed=0
ok() { echo "  ok    $*"; passed=$((passed + 1)); }
bad() { echo "  FAIL  $*"; failed=$((failed + 1)); }

for tool in openssl python3 chromium certutil; do
  command -v "$tool" >/dev/null 2>&1 || { echo "interop: $tool is not installed; run 'make deps'" >&2; exit 1; }
done
python3 -c 'import grpc, grpc_tools, cryptography' 2>/dev/null \
  || { echo "interop: python grpcio, grpcio-tools or cryptography is missing; run 'make deps'" >&2; exit 1; }
[ -x "$FISCUS_BIN" ] || { echo "interop: $FISCUS_BIN is missing; build it with 'cargo build -p fiscus'" >&2; exit 1; }

work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "interop: starting a devnet with --rest-tls in $work"
"$FISCUS_BIN" devnet --base-port 0 --rest-tls --data-dir "$work/devnet" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 480); do
  grep -q "Serving until" "$work/out" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { echo "interop: the devnet exited" >&2; cat "$work/err" >&2; exit 1; }
  sleep 0.5
done
grep -q "Serving until" "$work/out" || { echo "interop: the devnet did not come up in 240 s" >&2; tail -20 "$work/err" >&2; exit 1; }

data="$work/devnet"
# Both roots (Ed25519, then the ECDSA TLS root), as enrollment writes them.
root="$data/ca/tls/ca.pem"
tls_root="$data/ca/ca/root-ecdsa.pem"
ca_addr="$(awk '$1 == "identity-ca" { print $3; exit }' "$work/out")"
# "exchange-adapter  https://HOST:PORT  (API page …)  gRPC HOST:PORT", after "member CODE".
mapfile -t adapters < <(awk '
  $1 == "member" { code = $2 }
  $1 == "exchange-adapter" { sub("https://", "", $2); print code, $2, $NF }' "$work/out")
[ -n "$ca_addr" ] && [ "${#adapters[@]}" -eq 5 ] || { echo "interop: cannot read the endpoints from the devnet's output" >&2; cat "$work/out" >&2; exit 1; }

# s_client ADDR [ALPN] [extra args…]: the handshake transcript, with a
# request written so that a refusal after the handshake (TLS 1.3 client
# authentication) is read too.
s_client() {
  local addr="$1" alpn="$2"; shift 2
  { printf 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'; sleep 1; } \
    | timeout 20 openssl s_client -connect "$addr" -tls1_3 -sigalgs ECDSA+SHA256 -CAfile "$root" \
        ${alpn:+-alpn "$alpn"} -ign_eof "$@" 2>&1 | tr -d '\000' || true
}
# Served an ECDSA certificate issued by the TLS root, and the chain verified.
served_ecdsa() {
  grep -q "Peer signature type: ECDSA" <<<"$1" && grep -q "Verify return code: 0 (ok)" <<<"$1" \
    && grep -q "i:.*TLS root CA, ECDSA P-256" <<<"$1"
}

echo "interop: openssl s_client -sigalgs ECDSA+SHA256"
t="$(s_client "$ca_addr" h2)"
if served_ecdsa "$t" && grep -q "CN = identity-ca" <<<"$t"; then ok "identity-ca $ca_addr: ECDSA certificate, handshake complete"; else bad "identity-ca $ca_addr"; echo "$t" | tail -20; fi

# A client certificate from a foreign CA (an ECDSA key, the Fiscus subject).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/O=130000/OU=client/CN=rogue" -keyout "$work/rogue.key" -out "$work/rogue.pem" 2>/dev/null

for line in "${adapters[@]}"; do
  read -r code rest grpc <<<"$line"
  client="$data/member-$code/client"
  t="$(s_client "$rest" "" )"
  if served_ecdsa "$t"; then ok "$code REST $rest: ECDSA certificate, no client certificate needed (API keys)"; else bad "$code REST $rest"; echo "$t" | tail -20; fi
  t="$(s_client "$grpc" h2 -cert "$client/cert-ecdsa.pem" -key "$client/key-ecdsa.pem")"
  if served_ecdsa "$t" && ! grep -qi "alert" <<<"$t"; then ok "$code gRPC $grpc: ECDSA both ways"; else bad "$code gRPC $grpc with an ECDSA client certificate"; echo "$t" | tail -20; fi
  t="$(s_client "$grpc" h2)"
  if grep -q "alert certificate required" <<<"$t"; then ok "$code gRPC $grpc: refused without a client certificate"; else bad "$code gRPC $grpc accepted a client without a certificate"; echo "$t" | tail -20; fi
  t="$(s_client "$grpc" h2 -cert "$work/rogue.pem" -key "$work/rogue.key")"
  if grep -qiE "alert (unknown ca|bad certificate|certificate unknown|decrypt error)" <<<"$t"; then ok "$code gRPC $grpc: refused a foreign CA's ECDSA certificate"; else bad "$code gRPC $grpc accepted a foreign certificate"; echo "$t" | tail -20; fi
done

echo "interop: Python grpcio $(python3 -c 'import grpc; print(grpc.__version__)')"
read -r code _ grpc <<<"${adapters[0]}"
client="$data/member-$code/client"
for kind in ecdsa ed25519; do
  if [ "$kind" = ecdsa ]; then cert="$client/cert-ecdsa.pem"; key="$client/key-ecdsa.pem"; else cert="$client/cert.pem"; key="$client/key.pem"; fi
  if res="$(timeout 180 python3 tests/interop/grpc_client.py --target "$grpc" --ca "$root" --cert "$cert" --key "$key" \
        --signer-cert "$client/cert.pem" --signer-key "$client/key.pem" --org "$code" --consortium fiscus-devnet \
        --ca-target "$ca_addr" 2>&1)"; then
    ok "grpcio, $kind client certificate: Exchange.SubmitStream, GetTxStatus; IdentityCa.GetCrl: $res"
  else
    bad "grpcio, $kind client certificate: $res"
  fi
done

echo "interop: $(chromium --version 2>/dev/null | head -1)"
read -r code rest _ <<<"${adapters[1]}"
# A workstation that trusts the consortium's TLS root: an NSS database of its
# own (Chromium on Linux reads $HOME/.pki/nssdb), the root as a trusted CA for
# servers. And one that trusts nothing of ours.
trusting="$work/home-trusting"; untrusting="$work/home-untrusting"
mkdir -p "$trusting/.pki/nssdb" "$untrusting/.pki/nssdb"
certutil -d "sql:$trusting/.pki/nssdb" -N --empty-password
certutil -d "sql:$trusting/.pki/nssdb" -A -t "C,," -n "Fiscus consortium TLS root" -i "$tls_root"
certutil -d "sql:$untrusting/.pki/nssdb" -N --empty-password
mkdir -p "$OUT_DIR"
browser() {  # HOME, then chromium flags…; a fresh profile each time
  local home="$1"; shift
  local profile; profile="$(mktemp -d "$work/chromium.XXXX")"
  HOME="$home" timeout 90 chromium --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$profile" \
    --window-size=1280,900 --virtual-time-budget=5000 "$@" 2>/dev/null || true
}
dom="$(browser "$trusting" --dump-dom "https://$rest/docs")"
# The operations are rendered by the page's script from /openapi.json, fetched over the same TLS.
if grep -q "exchange-adapter API" <<<"$dom" && grep -q "/v1/accounts" <<<"$dom"; then
  ok "chromium https://$rest/docs: the chain verified against the installed TLS root, rendered from /openapi.json"
else
  bad "chromium https://$rest/docs did not render"; echo "$dom" | head -20
fi
rm -f "$OUT_DIR/docs.png"
browser "$trusting" --screenshot="$OUT_DIR/docs.png" "https://$rest/docs" >/dev/null
if [ -s "$OUT_DIR/docs.png" ]; then ok "chromium screenshot: $OUT_DIR/docs.png ($(stat -c %s "$OUT_DIR/docs.png") bytes)"; else bad "chromium took no screenshot"; fi
dom="$(browser "$untrusting" --dump-dom "https://$rest/docs")"
if ! grep -q "/v1/accounts" <<<"$dom"; then ok "chromium without the TLS root installed: refused"; else bad "chromium loaded the page without trusting the root"; fi

echo "interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
