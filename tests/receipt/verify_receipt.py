#!/usr/bin/env python3
"""An independent verifier of Fiscus offline receipts (回执).

Written from docs/receipts.md alone, as a check that the document is enough to
implement a verifier: it imports nothing from the repository and never runs the
`fiscus` binary. It needs Python 3.11 and the `cryptography` package (only for
the Ed25519 equation and as a strict X.509 parser); protobuf and DER are
decoded here by hand.

    python3 verify_receipt.py --file RECEIPT --root ROOT.pem --certs-dir DIR \
        [--config CONFIG.pb] [--require-final]

It prints one JSON object on stdout. Exit codes: 0 the receipt is valid
(final or not; with --require-final only when final), 1 it is invalid (or not
final under --require-final), 2 the inputs could not be read.

The section numbers in comments (§N) refer to docs/receipts.md.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MAX_ATTESTATIONS = 1024
MAX_PATH = 64


class Invalid(Exception):
    """The receipt does not verify (exit 1)."""


class InputError(Exception):
    """An input could not be read (exit 2)."""


# ---------------------------------------------------------------------------
# §3 Protobuf wire format: a small decoder that refuses what prost refuses.
# ---------------------------------------------------------------------------

class DecodeError(Exception):
    pass


RECURSION_LIMIT = 100

# Field kinds. Schemas map a field number to (name, kind, repeated, schema).
VARINT_KINDS = {"uint64", "int64", "uint32", "int32", "enum", "bool"}


def F(name, kind, repeated=False, schema=None):
    return (name, kind, repeated, schema)


SIGNATURE = {1: F("cert_id", "bytes"), 2: F("signature", "bytes"), 3: F("certificate", "bytes")}
SIGNED_ATTESTATION = {1: F("attestation", "bytes"), 2: F("signature", "message", schema=SIGNATURE)}
INCLUSION_PROOF = {
    1: F("leaf_index", "uint64"),
    2: F("tree_size", "uint64"),
    3: F("path", "bytes", repeated=True),
}
RECEIPT_PROOF = {
    1: F("receipt", "bytes"),
    2: F("proof", "message", schema=INCLUSION_PROOF),
    3: F("block_header", "bytes"),
    4: F("attestations", "message", repeated=True, schema=SIGNED_ATTESTATION),
}
BLOCK_HEADER = {
    1: F("number", "uint64"),
    2: F("prev_hash", "bytes"),
    3: F("tx_root", "bytes"),
    4: F("timestamp_ms", "int64"),
    5: F("orderer_id", "string"),
    6: F("tx_count", "uint32"),
}
ATTESTATION = {
    1: F("member", "string"),
    2: F("height", "uint64"),
    3: F("block_hash", "bytes"),
    4: F("state_hash", "bytes"),
    5: F("receipts_root", "bytes"),
}
STATE_WRITE = {
    1: F("key", "bytes"),
    2: F("value", "bytes"),
    3: F("deleted", "bool"),
    4: F("value_hash", "bytes"),
}
CONTRACT_EVENT = {1: F("name", "string"), 2: F("data", "bytes")}
RECEIPT = {
    1: F("tx_id", "bytes"),
    2: F("block_number", "uint64"),
    3: F("tx_index", "uint32"),
    4: F("status", "enum"),
    5: F("reason", "string"),
    6: F("writes", "message", repeated=True, schema=STATE_WRITE),
    7: F("events", "message", repeated=True, schema=CONTRACT_EVENT),
}
ORG = {1: F("code", "string"), 2: F("name", "string"), 3: F("level", "enum"), 4: F("parent", "string")}
MEMBER = {
    1: F("org_code", "string"),
    2: F("gossip_endpoints", "string", repeated=True),
    3: F("roles", "enum", repeated=True),
    4: F("allowed_names", "string", repeated=True),
}
ORDERER_NODE = {
    1: F("raft_id", "uint64"),
    2: F("node_id", "string"),
    3: F("org_code", "string"),
    4: F("endpoint", "string"),
    5: F("cert_id", "bytes"),
}
REVOKED_CERTIFICATE = {1: F("cert_id", "bytes"), 2: F("reason", "string"), 3: F("effective_height", "uint64")}
CRL = {
    1: F("number", "uint64"),
    2: F("revoked", "message", repeated=True, schema=REVOKED_CERTIFICATE),
    3: F("signature", "bytes"),
    4: F("x509_der", "bytes"),
}
LIMITS = {n: F(f"f{n}", "uint32") for n in range(1, 6)}
REVOKED_ORG = {1: F("org_code", "string"), 2: F("reason", "string"), 3: F("effective_height", "uint64")}
GOVERNANCE_POLICY = {1: F("numerator", "uint32"), 2: F("denominator", "uint32")}
CONTRACT_VERSION = {1: F("contract", "string"), 2: F("version", "uint32")}
BUDGET_APPROVAL = {
    1: F("fiscal_year", "uint32"),
    2: F("org_code", "string"),
    3: F("approved_on", "string"),
    4: F("document", "string"),
}
HOLIDAY_CALENDAR = {
    1: F("year", "uint32"),
    2: F("holidays", "string", repeated=True),
    3: F("workdays", "string", repeated=True),
}
DEADLINE_POLICY = {1: F("emergency_days", "uint32"), 2: F("acknowledge_days", "uint32")}
CONSORTIUM_CONFIG = {
    1: F("consortium_id", "string"),
    2: F("version", "uint64"),
    3: F("orgs", "message", repeated=True, schema=ORG),
    4: F("members", "message", repeated=True, schema=MEMBER),
    5: F("orderers", "message", repeated=True, schema=ORDERER_NODE),
    6: F("ca_roots", "bytes", repeated=True),
    7: F("crl", "message", schema=CRL),
    8: F("limits", "message", schema=LIMITS),
    9: F("revoked_orgs", "message", repeated=True, schema=REVOKED_ORG),
    10: F("governance", "message", schema=GOVERNANCE_POLICY),
    11: F("contracts", "message", repeated=True, schema=CONTRACT_VERSION),
    12: F("budget_approvals", "message", repeated=True, schema=BUDGET_APPROVAL),
    13: F("holiday_calendars", "message", repeated=True, schema=HOLIDAY_CALENDAR),
    14: F("deadline_policy", "message", schema=DEADLINE_POLICY),
    15: F("recipient_id_salt", "bytes"),
}


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A base-128 varint of at most 10 bytes whose value fits in 64 bits."""
    value = 0
    for i in range(10):
        if pos >= len(buf):
            raise DecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        if i == 9 and b >= 0x02:
            raise DecodeError("varint overflows 64 bits")
        value |= (b & 0x7F) << (7 * i)
        if b < 0x80:
            return value, pos
    raise DecodeError("varint longer than 10 bytes")  # unreachable: i == 9 catches it


def read_key(buf: bytes, pos: int) -> tuple[int, int, int]:
    key, pos = read_varint(buf, pos)
    if key > 0xFFFFFFFF:
        raise DecodeError(f"invalid key {key}")
    wire = key & 7
    if wire > 5:
        raise DecodeError(f"invalid wire type {wire}")
    field = key >> 3
    if field < 1:
        raise DecodeError("invalid field number 0")
    return field, wire, pos


def read_len(buf: bytes, pos: int) -> tuple[bytes, int]:
    n, pos = read_varint(buf, pos)
    if n > len(buf) - pos:
        raise DecodeError("length-delimited field runs past the end")
    return buf[pos:pos + n], pos + n


def skip_field(buf: bytes, pos: int, field: int, wire: int, depth: int) -> int:
    if depth == 0:
        raise DecodeError("recursion limit reached")
    if wire == 0:
        _, pos = read_varint(buf, pos)
        return pos
    if wire == 1 or wire == 5:
        n = 8 if wire == 1 else 4
        if n > len(buf) - pos:
            raise DecodeError("fixed-width field runs past the end")
        return pos + n
    if wire == 2:
        _, pos = read_len(buf, pos)
        return pos
    if wire == 3:
        while True:
            inner, inner_wire, pos = read_key(buf, pos)
            if inner_wire == 4:
                if inner != field:
                    raise DecodeError("unexpected end-group tag")
                return pos
            pos = skip_field(buf, pos, inner, inner_wire, depth - 1)
    raise DecodeError("unexpected end-group tag")


def varint_value(kind: str, v: int):
    if kind == "uint64":
        return v
    if kind == "int64":
        return v - (1 << 64) if v >= 1 << 63 else v
    if kind == "uint32":
        return v & 0xFFFFFFFF
    if kind in ("int32", "enum"):
        v &= 0xFFFFFFFF
        return v - (1 << 32) if v >= 1 << 31 else v
    if kind == "bool":
        return v != 0
    raise AssertionError(kind)


def default_of(kind: str, repeated: bool):
    if repeated:
        return []
    if kind in VARINT_KINDS:
        return False if kind == "bool" else 0
    if kind == "bytes":
        return b""
    if kind == "string":
        return ""
    return None  # an absent message


def decode(buf: bytes, schema: dict, depth: int = RECURSION_LIMIT) -> dict:
    """Decodes a message. Unknown fields are skipped; a known field with the
    wrong wire type, a string that is not UTF-8, or any malformed varint,
    length or group is an error. A singular message field that occurs more
    than once is merged (equivalently: its occurrences are concatenated)."""
    out = {name: default_of(kind, rep) for name, kind, rep, _ in schema.values()}
    parts: dict[str, list[bytes]] = {}  # occurrences of singular message fields
    pos = 0
    while pos < len(buf):
        field, wire, pos = read_key(buf, pos)
        spec = schema.get(field)
        if spec is None:
            pos = skip_field(buf, pos, field, wire, depth)
            continue
        name, kind, repeated, sub = spec
        if kind in VARINT_KINDS:
            if repeated and wire == 2:  # packed
                chunk, pos = read_len(buf, pos)
                p = 0
                while p < len(chunk):
                    v, p = read_varint(chunk, p)
                    out[name].append(varint_value(kind, v))
                continue
            if wire != 0:
                raise DecodeError(f"field {name}: wire type {wire}, expected 0")
            v, pos = read_varint(buf, pos)
            if repeated:
                out[name].append(varint_value(kind, v))
            else:
                out[name] = varint_value(kind, v)
            continue
        if wire != 2:
            raise DecodeError(f"field {name}: wire type {wire}, expected 2")
        if kind == "message" and depth == 0:
            raise DecodeError("recursion limit reached")
        chunk, pos = read_len(buf, pos)
        if kind == "bytes":
            value = chunk
        elif kind == "string":
            try:
                value = chunk.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DecodeError(f"field {name} is not UTF-8") from e
        else:
            if repeated:
                out[name].append(decode(chunk, sub, depth - 1))
            else:
                # Each occurrence must decode; together they are one message.
                decode(chunk, sub, depth - 1)
                parts.setdefault(name, []).append(chunk)
            continue
        if repeated:
            out[name].append(value)
        else:
            out[name] = value
    for name, chunks in parts.items():
        out[name] = decode(b"".join(chunks), schema_of(schema, name), depth - 1)
    return out


def schema_of(schema: dict, name: str) -> dict:
    return next(sub for n, _, _, sub in schema.values() if n == name)


# ---------------------------------------------------------------------------
# Reading inputs: raw protobuf or standard base64 of it.
# ---------------------------------------------------------------------------

# Unicode White_Space, as Rust's str::trim removes it.
RUST_WHITESPACE = (
    "\u0009\u000a\u000b\u000c\u000d\u0020\u0085\u00a0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


def raw_or_base64(data: bytes) -> bytes:
    """§4: the standard base64 (with canonical padding) of the trimmed text,
    if it is that; otherwise the bytes as they are."""
    text = data.decode("utf-8", errors="replace").strip(RUST_WHITESPACE)
    try:
        decoded = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return data
    # Canonical only: re-encoding must give the same text (padding present,
    # unused trailing bits zero).
    if base64.b64encode(decoded).decode("ascii") != text:
        return data
    return decoded


def read_file(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise InputError(f"reading {what} {path}: {e}") from e


# ---------------------------------------------------------------------------
# §5 Hashes and the RFC 6962 Merkle proof.
# ---------------------------------------------------------------------------

def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf_hash(data: bytes) -> bytes:
    return sha256(b"\x00" + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def merkle_verify(root: bytes, leaf_data: bytes, leaf_index: int, tree_size: int, path: list[bytes]) -> bool:
    """RFC 9162 §2.1.3.2: does `leaf_data` sit at `leaf_index` of the tree of
    `tree_size` leaves whose root is `root`?"""
    if leaf_index >= tree_size:
        return False
    fn, sn = leaf_index, tree_size - 1
    r = leaf_hash(leaf_data)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 == 1 or fn == sn:
            r = node_hash(p, r)
            if fn & 1 == 0:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# ---------------------------------------------------------------------------
# §7 Ed25519: strict encodings, no small-order A or R, S < L, and the equation.
# ---------------------------------------------------------------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493

# Every 32-byte string with y < p that decodes to a point of small order
# (order 1, 2, 4 or 8). The first eight are the canonical encodings of the
# eight small-order points; the last two set the sign bit on a point whose x
# is 0, which curve25519-dalek decodes to that same point.
SMALL_ORDER_ENCODINGS = {
    bytes.fromhex(h)
    for h in (
        "0100000000000000000000000000000000000000000000000000000000000000",  # (0, 1), order 1
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # (0, -1), order 2
        "0000000000000000000000000000000000000000000000000000000000000000",  # (+sqrt(-1), 0), order 4
        "0000000000000000000000000000000000000000000000000000000000000080",  # (-sqrt(-1), 0), order 4
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",  # order 8
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",  # order 8
        "0100000000000000000000000000000000000000000000000000000000000080",  # (0, 1), sign bit set
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",  # (0, -1), sign bit set
    )
}


def canonical_point_encoding(b: bytes) -> bool:
    return int.from_bytes(b, "little") & ((1 << 255) - 1) < P


def ed25519_accept(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(public_key) != 32 or len(signature) != 64:
        return False
    r, s = signature[:32], signature[32:]
    if not canonical_point_encoding(public_key) or public_key in SMALL_ORDER_ENCODINGS:
        return False
    if not canonical_point_encoding(r) or r in SMALL_ORDER_ENCODINGS:
        return False
    if int.from_bytes(s, "little") >= L:
        return False
    # The equation. OpenSSL checks [S]B = R + [k]A (cofactorless); with the
    # checks above it agrees with the reference's cofactored equation except
    # on signatures crafted with a small-order component (docs §7).
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
        return True
    except (InvalidSignature, ValueError):
        return False


# ---------------------------------------------------------------------------
# §6 Certificates: a minimal DER walker for the fields the profile uses.
# ---------------------------------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
OID_ED25519 = bytes.fromhex("2b6570")  # 1.3.101.112
OID_O = bytes.fromhex("55040a")  # 2.5.4.10 organizationName
OID_OU = bytes.fromhex("55040b")  # 2.5.4.11 organizationalUnitName
STRING_TAGS = {0x0C, 0x12, 0x13, 0x16}  # UTF8String, NumericString, PrintableString, IA5String


def der_tlv(buf: bytes, pos: int) -> tuple[int, bytes, bytes, int]:
    """(tag, content, whole TLV, next position) of the DER element at `pos`."""
    if pos + 2 > len(buf):
        raise ValueError("truncated DER")
    start = pos
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError("high tag numbers are not used here")
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4 or pos + k > len(buf):
            raise ValueError("bad DER length")
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    if pos + n > len(buf):
        raise ValueError("DER element runs past the end")
    return tag, buf[pos:pos + n], buf[start:pos + n], pos + n


def der_children(content: bytes) -> list[tuple[int, bytes, bytes]]:
    out, pos = [], 0
    while pos < len(content):
        tag, c, whole, pos = der_tlv(content, pos)
        out.append((tag, c, whole))
    return out


def first_attribute(name_content: bytes, oid: bytes):
    """The first attribute `oid` of a Name, in RDN order, as a string, or None
    (also None if its value is not one of the four string types)."""
    for tag, rdn, _ in der_children(name_content):
        if tag != 0x31:
            raise ValueError("an RDN is not a SET")
        for t, atv, _ in der_children(rdn):
            if t != 0x30:
                raise ValueError("an attribute is not a SEQUENCE")
            parts = der_children(atv)
            if len(parts) < 2 or parts[0][0] != 0x06:
                raise ValueError("bad attribute")
            if parts[0][1] == oid:
                vtag, value, _ = parts[1]
                if vtag not in STRING_TAGS:
                    return None
                try:
                    return value.decode("utf-8")
                except UnicodeDecodeError:
                    return None
    return None


class Cert:
    """The parts of a DER certificate that the verifier uses."""

    def __init__(self, der: bytes):
        x = x509.load_der_x509_certificate(der)  # a strict parse, or ValueError
        tag, cert, _, end = der_tlv(der, 0)
        if tag != 0x30 or end != len(der):
            raise ValueError("not a certificate")
        tbs, sig_alg, sig = der_children(cert)[:3]
        self.tbs = tbs[2]  # the whole TBSCertificate TLV, as signed
        self.sig_alg_oid = der_children(sig_alg[1])[0][1]
        if sig[0] != 0x03 or not sig[1]:
            raise ValueError("bad signature BIT STRING")
        self.signature = sig[1][1:]
        fields = der_children(tbs[1])
        if fields[0][0] == 0xA0:  # [0] version
            fields = fields[1:]
        # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
        self.issuer = fields[2][2]
        self.subject = fields[4][2]
        self.subject_content = fields[4][1]
        spki = der_children(fields[5][1])
        self.key_alg_oid = der_children(spki[0][1])[0][1]
        if spki[1][0] != 0x03 or not spki[1][1]:
            raise ValueError("bad public key BIT STRING")
        self.public_key = spki[1][1][1:]
        self.not_before = (x.not_valid_before_utc - EPOCH) // timedelta(seconds=1)
        self.not_after = (x.not_valid_after_utc - EPOCH) // timedelta(seconds=1)
        self.cert_id = sha256(der)
        self.member = first_attribute(self.subject_content, OID_O)
        self.role = first_attribute(self.subject_content, OID_OU)


def pem_certificates(data: bytes, path: str) -> list[bytes]:
    """The DER of every CERTIFICATE block of a PEM file; at least one."""
    ders, inside, b64 = [], False, []
    for line in data.replace(b"\r", b"\n").split(b"\n"):
        s = line.strip()
        if not inside and s == b"-----BEGIN CERTIFICATE-----":
            inside, b64 = True, []
        elif inside and s == b"-----END CERTIFICATE-----":
            try:
                ders.append(base64.b64decode(b"".join(b64), validate=True))
            except (binascii.Error, ValueError) as e:
                raise InputError(f"{path}: a CERTIFICATE block is not base64") from e
            inside = False
        elif inside:
            b64.append(s)
    if inside:
        raise InputError(f"{path}: a CERTIFICATE block has no END line")
    if not ders:
        raise InputError(f"{path}: no certificate")
    return ders


class Signers:
    """§6: the node certificates issued by a root, by cert id; and the roots,
    for a node certificate an attestation's signature carries."""

    def __init__(self, roots: list[Cert], nodes: dict[bytes, Cert]):
        self.roots = roots
        self.nodes = nodes

    def node(self, der: bytes) -> Cert | None:
        """The certificate in `der` if it is an attestation signer (§6 rules 1-5)."""
        try:
            c = Cert(der)
        except Exception:  # not a certificate (or outside the profile)
            return None
        if c.sig_alg_oid != OID_ED25519:
            return None
        if not any(
            c.issuer == r.subject and ed25519_accept(r.public_key, c.tbs, c.signature)
            for r in self.roots
        ):
            return None  # not issued by the root
        if c.member is None or len(c.member) != 6 or not all("0" <= ch <= "9" for ch in c.member):
            return None
        if c.role != "node":
            return None  # client, orderer, admin, … certificates never sign attestations
        if c.key_alg_oid != OID_ED25519 or len(c.public_key) != 32:
            return None
        return c

    def get(self, cert_id: bytes, carried: bytes) -> Cert | None:
        """The signer with `cert_id`: on file, else the carried certificate
        when its SHA-256 is `cert_id` and it is a signer."""
        c = self.nodes.get(cert_id)
        if c is not None:
            return c
        if carried and sha256(carried) == cert_id:
            return self.node(carried)
        return None


def load_signers(root_path: str, certs_dir: str) -> Signers:
    """§6: the node certificates of `certs_dir` issued by a root, by cert id."""
    roots = []
    for der in pem_certificates(read_file(root_path, "the root"), root_path):
        try:
            roots.append(Cert(der))
        except Exception:  # not a certificate: ignored
            continue
    d = Path(certs_dir)
    if not d.is_dir():
        raise InputError(f"{certs_dir} is not a directory")
    signers = Signers(roots, {})
    for path in sorted(d.iterdir()):
        if path.suffix != ".pem" or path.name == ".pem":
            continue
        der = pem_certificates(read_file(str(path), "certificate"), str(path))[0]
        c = signers.node(der)
        if c is not None:
            signers.nodes[c.cert_id] = c
    return signers


# ---------------------------------------------------------------------------
# §8 The verification rules.
# ---------------------------------------------------------------------------

TX_STATUS = [
    "unspecified", "valid", "bad_encoding", "bad_signature", "unknown_certificate",
    "revoked_certificate", "wrong_consortium", "duplicate", "unauthorized",
    "insufficient_funds", "frozen", "invalid_argument", "not_found", "conflict",
]


def members_at(config: dict, height: int) -> set[str]:
    out = {m["org_code"] for m in config["members"]}
    out |= {r["org_code"] for r in config["revoked_orgs"] if r["effective_height"] > height}
    return out


def signer_problem(c: Cert, config: dict | None, height: int, time_s: int) -> str | None:
    if time_s < c.not_before or time_s > c.not_after:
        return (f"its certificate {c.cert_id.hex()} is not valid at the block's time "
                f"({time_s}; valid {c.not_before} to {c.not_after})")
    if config is None:
        return None
    crl = config["crl"]
    if crl is not None:
        for r in crl["revoked"]:
            if r["cert_id"] == c.cert_id and r["effective_height"] <= height:
                return (f"its certificate {c.cert_id.hex()} is revoked from height "
                        f"{r['effective_height']} ({r['reason']})")
    for r in config["revoked_orgs"]:
        if r["org_code"] == c.member and r["effective_height"] <= height:
            return f"member {r['org_code']} left the consortium at height {r['effective_height']}"
    return None


def dec(buf: bytes, schema: dict, what: str) -> dict:
    try:
        return decode(buf, schema)
    except DecodeError as e:
        raise Invalid(f"{what} does not decode: {e}") from e


def verify(proof: dict, signers: Signers, config: dict | None) -> dict:
    # Rule 1: the receipt, the header and the Merkle proof belong together.
    receipt = dec(proof["receipt"], RECEIPT, "the receipt")
    header = dec(proof["block_header"], BLOCK_HEADER, "the block header")
    if receipt["block_number"] != header["number"]:
        raise Invalid(f"the receipt names block {receipt['block_number']} "
                      f"but the header is block {header['number']}")
    ip = proof["proof"]
    if ip is None:
        raise Invalid("the Merkle proof is missing")
    if ip["tree_size"] != header["tx_count"]:
        raise Invalid(f"the Merkle proof is over {ip['tree_size']} receipts but block "
                      f"{header['number']} has {header['tx_count']} transactions")
    if ip["leaf_index"] != receipt["tx_index"]:
        raise Invalid(f"the Merkle proof is for position {ip['leaf_index']} "
                      f"but the receipt says tx_index {receipt['tx_index']}")
    if len(ip["path"]) > MAX_PATH:
        raise Invalid(f"the Merkle path has {len(ip['path'])} hashes (at most {MAX_PATH})")
    if any(len(h) != 32 for h in ip["path"]):
        raise Invalid("a Merkle path hash is not 32 bytes")

    block_hash = sha256(proof["block_header"])
    height = header["number"]
    atts = proof["attestations"]
    if not atts:
        raise Invalid("the proof carries no attestation")
    if len(atts) > MAX_ATTESTATIONS:
        raise Invalid(f"the proof carries {len(atts)} attestations (at most {MAX_ATTESTATIONS})")
    members = members_at(config, height) if config is not None else set()
    time_s = header["timestamp_ms"] // 1000  # floor division, also below 0
    not_counted: list[tuple[str, str]] = []
    groups: dict[tuple[bytes, bytes, bytes], set[str]] = {}

    for signed in atts:
        # Rule 2: any failure here makes the whole proof invalid.
        att = dec(signed["attestation"], ATTESTATION, "an attestation")
        sig = signed["signature"]
        if sig is None:
            raise Invalid("an attestation is unsigned")
        if len(sig["cert_id"]) != 32:
            raise Invalid(f"a cert id is {len(sig['cert_id'])} bytes, not 32")
        c = signers.get(sig["cert_id"], sig["certificate"])
        if c is None:
            raise Invalid(f"member {att['member']}'s attestation is signed by certificate "
                          f"{sig['cert_id'].hex()}, which is not a node certificate issued by the root")
        if c.member != att["member"]:
            raise Invalid(f"an attestation for member {att['member']} is signed by a certificate of {c.member}")
        if not ed25519_accept(c.public_key, signed["attestation"], sig["signature"]):
            raise Invalid(f"member {att['member']}'s attestation signature does not verify")
        if att["height"] != height or att["block_hash"] != block_hash:
            raise Invalid(f"member {att['member']}'s attestation is for another block (height {att['height']})")
        # Rule 3: counted only if the signer may sign at this height.
        why = signer_problem(c, config, height, time_s)
        if why is not None:
            not_counted.append((att["member"], why))
            continue
        if config is not None and att["member"] not in members:
            not_counted.append((att["member"], f"{att['member']} is not a member at height {height}"))
            continue
        key = (att["block_hash"], att["state_hash"], att["receipts_root"])
        groups.setdefault(key, set()).add(att["member"])

    # Rule 4: the largest group (first in byte order on a tie) whose receipts
    # root holds the receipt.
    agreeing = None
    for triple in sorted(groups):
        group = groups[triple]
        root = triple[2]
        if len(root) != 32:
            raise Invalid(f"a receipts root is {len(root)} bytes, not 32")
        if not merkle_verify(root, proof["receipt"], ip["leaf_index"], ip["tree_size"], ip["path"]):
            for m in sorted(group):
                not_counted.append((m, "the receipt is not under its receipts root"))
            continue
        if agreeing is None or len(group) > len(groups[agreeing]):
            agreeing = triple
    if agreeing is None:
        raise Invalid("no counted attestation has the receipt under its receipts root")
    for triple in sorted(groups):
        if triple != agreeing:
            for m in sorted(groups[triple]):
                if not any(n == m for n, _ in not_counted):
                    not_counted.append(
                        (m, "it attests a different state hash or receipts root than the agreeing members"))
    attested_by = groups[agreeing]

    # Rule 5: final.
    majority = len(members) // 2 + 1
    if config is None:
        not_final_because = ("no consortium config was given (--config), "
                             "so membership and revocation were not checked")
    elif len(attested_by) < majority:
        not_final_because = f"{len(attested_by)} of {len(members)} members agree; a majority is {majority}"
    else:
        not_final_because = None
    status = receipt["status"]
    return {
        "valid": True,
        "final": not_final_because is None,
        "not_final_because": not_final_because,
        "tx_id": receipt["tx_id"].hex(),
        "tx_index": receipt["tx_index"],
        "status": TX_STATUS[status] if 0 <= status < len(TX_STATUS) else "",
        "reason": receipt["reason"],
        "block_number": height,
        "block_hash": block_hash.hex(),
        "attested_by": sorted(attested_by),
        "members": sorted(members),
        "majority": majority,
        "not_counted": [{"member": m, "why": w} for m, w in not_counted],
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="Verify a Fiscus receipt proof offline (docs/receipts.md).")
    ap.add_argument("--file", required=True, help="ReceiptProof, raw protobuf or standard base64")
    ap.add_argument("--root", required=True, help="the consortium root certificate (PEM)")
    ap.add_argument("--certs-dir", required=True, help="a directory of *.pem certificates")
    ap.add_argument("--config", help="ConsortiumConfig, raw protobuf or standard base64")
    ap.add_argument("--require-final", action="store_true", help="exit 1 unless the receipt is final")
    ap.add_argument("--json", action="store_true", help="accepted for symmetry with fiscus; output is always JSON")
    args = ap.parse_args(argv)

    def emit(obj: dict) -> None:
        print(json.dumps(obj, ensure_ascii=False, sort_keys=True))

    try:
        try:
            proof = decode(raw_or_base64(read_file(args.file, "the receipt")), RECEIPT_PROOF)
        except DecodeError as e:
            raise InputError(f"the file is not a ReceiptProof: {e}") from e
        signers = load_signers(args.root, args.certs_dir)
        config = None
        if args.config is not None:
            try:
                config = decode(raw_or_base64(read_file(args.config, "the config")), CONSORTIUM_CONFIG)
            except DecodeError as e:
                raise InputError(f"{args.config} is not a ConsortiumConfig: {e}") from e
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        emit({"valid": False, "final": False, "error": str(e)})
        return 2
    try:
        out = verify(proof, signers, config)
    except Invalid as e:
        emit({"valid": False, "final": False, "error": str(e)})
        return 1
    emit(out)
    return 0 if out["final"] or not args.require_final else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
