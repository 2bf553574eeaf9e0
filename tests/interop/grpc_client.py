#!/usr/bin/env python3
"""A standard gRPC client (Python grpcio: gRPC's C core on BoringSSL) against an
exchange-adapter over mutual TLS, as a treasury system would call it.

It builds a transaction from the .proto files alone (stubs generated here with
grpcio-tools), signs it with the member's Ed25519 ledger key (`cryptography`),
sends it over `Exchange.SubmitStream` and polls `Exchange.GetTxStatus` until the
transaction is committed. It shares no code with Fiscus.

  grpc_client.py --target HOST:PORT --ca ROOT.pem --cert TLS_CERT.pem --key TLS_KEY.pem
                 --signer-cert CERT.pem --signer-key KEY.pem --org CODE --consortium ID

`--cert/--key` is the TLS client identity (ECDSA P-256 or Ed25519);
`--signer-cert/--signer-key` the Ed25519 identity that signs the transaction.
Prints one JSON line with what it saw; exits non-zero on any failure.
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from grpc_tools import protoc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO_DIR = os.path.join(ROOT, "proto")


def generate_stubs(out: str) -> None:
    """Compiles every .proto under proto/ into `out` with grpcio-tools."""
    files = []
    for dirpath, _, names in os.walk(PROTO_DIR):
        files += [os.path.relpath(os.path.join(dirpath, n), PROTO_DIR) for n in names if n.endswith(".proto")]
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    rc = protoc.main(
        ["protoc", f"-I{PROTO_DIR}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}"]
        + sorted(files)
    )
    if rc != 0:
        raise SystemExit(f"protoc failed ({rc})")
    # Make every generated directory an importable package.
    for dirpath, _, _ in os.walk(out):
        open(os.path.join(dirpath, "__init__.py"), "a").close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--server-name", default="127.0.0.1")
    ap.add_argument("--ca", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--signer-cert", required=True)
    ap.add_argument("--signer-key", required=True)
    ap.add_argument("--org", required=True)
    ap.add_argument("--consortium", required=True)
    ap.add_argument("--ca-target", help="the identity-ca's gRPC HOST:PORT: also call IdentityCa.GetCrl there")
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()

    out = tempfile.mkdtemp(prefix="fiscus-stubs-")
    generate_stubs(out)
    sys.path.insert(0, out)
    from fiscus.exchange.v1 import exchange_pb2, exchange_pb2_grpc  # noqa: E402
    from fiscus.identity.v1 import identity_pb2, identity_pb2_grpc  # noqa: E402
    from fiscus.transfer.v1 import transfer_pb2  # noqa: E402
    from fiscus.types.v1 import tx_pb2  # noqa: E402

    read = lambda p: open(p, "rb").read()  # noqa: E731
    creds = grpc.ssl_channel_credentials(
        root_certificates=read(args.ca), private_key=read(args.key), certificate_chain=read(args.cert)
    )
    options = [("grpc.ssl_target_name_override", args.server_name)]
    channel = grpc.secure_channel(args.target, creds, options)
    grpc.channel_ready_future(channel).result(timeout=args.timeout)
    stub = exchange_pb2_grpc.ExchangeStub(channel)

    signer_der = x509.load_pem_x509_certificate(read(args.signer_cert)).public_bytes(serialization.Encoding.DER)
    signer_key = serialization.load_pem_private_key(read(args.signer_key), password=None)
    if not isinstance(signer_key, ed25519.Ed25519PrivateKey):
        raise SystemExit("--signer-key must be an Ed25519 key: the ledger's signatures are Ed25519")
    cert_id = hashlib.sha256(signer_der).digest()

    nonce = int.from_bytes(os.urandom(8), "big") >> 1
    program_id = f"interop-{nonce % 1_000_000_000}"
    year = time.gmtime().tm_year
    payload = tx_pb2.TxPayload(
        consortium_id=args.consortium,
        creator_cert_id=cert_id,
        nonce=nonce,
        client_timestamp_ms=int(time.time() * 1000),
        transfer=transfer_pb2.TransferCall(
            appropriate=transfer_pb2.AppropriateArgs(
                account=transfer_pb2.AccountRef(org_code=args.org, program_id=program_id),
                program=transfer_pb2.Program(
                    id=program_id,
                    name="interop: grpcio client",
                    kind=transfer_pb2.PROGRAM_KIND_GENERAL,
                    functional_code="2050202",
                    fiscal_year=year,
                    document=f"财预〔{year}〕1号",
                ),
                amount_fen=123_456,
                document=f"财预〔{year}〕1号",
            )
        ),
    ).SerializeToString()
    envelope = tx_pb2.Envelope(
        payload=payload, signatures=[tx_pb2.Signature(cert_id=cert_id, signature=signer_key.sign(payload))]
    )
    tx_id = hashlib.sha256(payload).digest()

    results = list(stub.SubmitStream(iter([envelope]), timeout=args.timeout))
    if len(results) != 1:
        raise SystemExit(f"SubmitStream answered {len(results)} results for 1 envelope")
    r = results[0]
    if r.error_code or r.tx_id != tx_id:
        raise SystemExit(f"SubmitStream refused the envelope: {r.error_code} {r.error}")

    deadline = time.monotonic() + args.timeout
    while True:
        status = stub.GetTxStatus(exchange_pb2.TxStatusRequest(tx_id=tx_id), timeout=args.timeout)
        if status.committed:
            break
        if time.monotonic() > deadline:
            raise SystemExit("the transaction was not committed in time")
        time.sleep(0.2)
    receipt = status.receipt
    seen = {
        "tx_id": tx_id.hex(),
        "block_number": receipt.block_number,
        "status": tx_pb2.TxStatus.Name(receipt.status),
        "reason": receipt.reason,
    }
    if args.ca_target:
        # The enrollment endpoint: GetCrl answers anyone, with or without a
        # client certificate (enrollment with a one-time secret has none).
        for name, ca_creds in [
            ("with_certificate", creds),
            ("anonymous", grpc.ssl_channel_credentials(root_certificates=read(args.ca))),
        ]:
            ca_channel = grpc.secure_channel(args.ca_target, ca_creds, options)
            crl = identity_pb2_grpc.IdentityCaStub(ca_channel).GetCrl(
                identity_pb2.GetCrlRequest(), timeout=args.timeout
            )
            if crl.number < 1 or not crl.x509_der:
                raise SystemExit(f"IdentityCa.GetCrl ({name}) answered no CRL")
            seen[f"ca_crl_number_{name}"] = crl.number
    print(json.dumps(seen))
    if receipt.status != tx_pb2.TX_STATUS_VALID:
        raise SystemExit(f"committed, but not valid: {tx_pb2.TxStatus.Name(receipt.status)} {receipt.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
