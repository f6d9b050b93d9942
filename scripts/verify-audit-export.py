#!/usr/bin/env python3
"""Verify a Portcullis audit export (JSON Lines or CSV) offline, from the rules of docs/audit-chain.md.

An independent implementation of those rules, in Python 3 with nothing but its standard library: it
shares no code with the gateway, so a test that runs it against the gateway's exports proves that the
documented canonical form is the one the gateway hashes.

    python3 scripts/verify-audit-export.py EXPORT_FILE JWKS_FILE

JWKS_FILE is the gateway's key set (GET /.well-known/jwks.json) as saved when the export was made.
Prints "OK: N events, sequences A to B" and exits 0, or prints "ALTERED: ..." naming the first
sequence found wrong and exits 1. Exit 2 for a usage error.
"""

import base64
import csv
import hashlib
import io
import json
import sys
import re
from datetime import datetime

GENESIS = "0" * 64
OUTCOMES = {"AUDIT_OUTCOME_SUCCESS": "success", "AUDIT_OUTCOME_FAILURE": "failure", "AUDIT_OUTCOME_DENIED": "denied", "AUDIT_OUTCOME_ERROR": "error"}
KINDS = {"PRINCIPAL_KIND_USER": "user", "PRINCIPAL_KIND_API_KEY": "api_key", "PRINCIPAL_KIND_ANONYMOUS": "anonymous", "PRINCIPAL_KIND_SYSTEM": "system"}
MANIFEST_TYP = "portcullis-audit-manifest+jws"
TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$")


class Altered(Exception):
    def __init__(self, message, sequence=None):
        super().__init__(message)
        self.sequence = sequence


# --- The canonical form (docs/audit-chain.md, "The hash of an event") -------------------------------

def json_string(text):
    """A JSON string as ECMAScript's JSON.stringify writes it."""
    short = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
    out = []
    for char in text:
        if char in short:
            out.append(short[char])
        elif ord(char) < 0x20:
            out.append("\\u%04x" % ord(char))
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def utf16_order(key):
    # Keys are compared as sequences of UTF-16 code units: big-endian UTF-16 bytes compare the same way.
    return key.encode("utf-16-be", "surrogatepass")


def canonical(value):
    """The canonical text of a value, or None when it is left out (absent, "", or an empty object)."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        members = []
        for key in sorted(value, key=utf16_order):
            inner = canonical(value[key])
            if inner is not None:
                members.append(json_string(key) + ":" + inner)
        return "{" + ",".join(members) + "}" if members else None
    if isinstance(value, str):
        return json_string(value)
    raise Altered("a hashed value is not a string: %r" % (value,))


def event_hash(prev_hash, content):
    text = canonical(content) or "{}"
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + text.encode("utf-8")).hexdigest()


def millisecond_time(raw):
    """An RFC 3339 UTC time with 0 to 9 fractional digits (protobuf JSON, ISO 8601) → YYYY-MM-DDTHH:MM:SS.sssZ."""
    match = TIME.match(raw)
    if not match:
        raise Altered("bad time %r" % raw)
    try:
        datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise Altered("bad time %r" % raw)
    return "%s.%sZ" % (match.group(1), ((match.group(2) or "") + "000")[:3])


def string(obj, key):
    value = obj.get(key, "")
    if not isinstance(value, str):
        raise Altered("%s is not a string" % key)
    return value


# --- Reading the two export formats -----------------------------------------------------------------

def from_jsonl(text):
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    entries, manifest = [], None
    for number, line in enumerate(lines, 1):
        if manifest is not None:
            raise Altered("line %d follows the manifest" % number)
        try:
            obj = json.loads(line)
        except ValueError:
            raise Altered("line %d is not JSON" % number)
        if not isinstance(obj, dict):
            raise Altered("line %d is not a JSON object" % number)
        if list(obj) == ["manifest"]:
            manifest = obj["manifest"]
            continue
        actor, target, metadata = obj.get("actor"), obj.get("target"), obj.get("metadata")
        if obj.get("outcome") not in OUTCOMES or (actor is not None and actor.get("kind") not in KINDS):
            raise Altered("line %d: unknown outcome or actor kind" % number)
        content = {
            "id": string(obj, "id"),
            "time": millisecond_time(string(obj, "time")),
            "type": string(obj, "type"),
            "outcome": OUTCOMES[obj["outcome"]],
            "actor": None if actor is None else {"kind": KINDS[actor["kind"]], "id": string(actor, "id"), "display": string(actor, "displayName"), "onBehalfOf": string(actor, "onBehalfOfUserId")},
            "target": None if target is None else {"kind": string(target, "kind"), "id": string(target, "id")},
            "ip": string(obj, "ip"),
            "userAgent": string(obj, "userAgent"),
            "requestId": string(obj, "requestId"),
            "method": string(obj, "method"),
            "reason": string(obj, "reason"),
            "metadata": metadata,
        }
        entries.append(entry(string(obj, "sequence"), string(obj, "prevHash"), string(obj, "hash"), content))
    return entries, manifest


def from_csv(text):
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = rows[0] if rows else []
    expected = ["sequence", "id", "time", "type", "outcome", "actor_kind", "actor_id", "actor_display_name", "target_kind", "target_id", "ip", "user_agent", "request_id", "method", "reason", "metadata", "prev_hash", "hash"]
    if header not in (expected, expected + ["actor_on_behalf_of_user_id"]):
        raise Altered("the CSV header was altered")
    entries, manifest = [], None
    for number, cells in enumerate(rows[1:], 2):
        if manifest is not None:
            raise Altered("row %d follows the manifest" % number)
        if len(cells) == 2 and cells[0] == "#manifest":
            manifest = cells[1]
            continue
        if len(cells) != len(header):
            raise Altered("row %d has %d cells" % (number, len(cells)))
        # A cell starting with ' had one added to defuse spreadsheet formulas: take it off.
        c = {name: (cell[1:] if cell.startswith("'") else cell) for name, cell in zip(header, cells)}
        try:
            metadata = json.loads(c["metadata"]) if c["metadata"] else None
        except ValueError:
            raise Altered("row %d: metadata is not JSON" % number)
        content = {
            "id": c["id"],
            "time": millisecond_time(c["time"]),
            "type": c["type"],
            "outcome": c["outcome"],
            "actor": None if c["actor_kind"] == "" else {"kind": c["actor_kind"], "id": c["actor_id"], "display": c["actor_display_name"], "onBehalfOf": c.get("actor_on_behalf_of_user_id", "")},
            "target": None if c["target_kind"] == "" and c["target_id"] == "" else {"kind": c["target_kind"], "id": c["target_id"]},
            "ip": c["ip"],
            "userAgent": c["user_agent"],
            "requestId": c["request_id"],
            "method": c["method"],
            "reason": c["reason"],
            "metadata": metadata,
        }
        entries.append(entry(c["sequence"], c["prev_hash"], c["hash"], content))
    return entries, manifest


def entry(sequence, prev_hash, hash_, content):
    if not sequence.isdigit() or sequence.startswith("0"):
        raise Altered("bad sequence number %r" % sequence)
    for value in (prev_hash, hash_):
        if len(value) != 64 or any(ch not in "0123456789abcdef" for ch in value):
            raise Altered("bad hash in event %s" % sequence, int(sequence))
    return {"seq": int(sequence), "prev": prev_hash, "hash": hash_, "content": content}


# --- The manifest's signature: JWS (RFC 7515) with Ed25519 (RFC 8032), from first principles -------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def point_add(a, b):
    # Extended twisted Edwards coordinates (X, Y, Z, T); the formula is complete, so it also doubles.
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa, bb = (y1 - x1) * (y2 - x2) % P, (y1 + x1) * (y2 + x2) % P
    cc, dd = 2 * D * t1 * t2 % P, 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def point_mul(scalar, point):
    result = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = point_add(result, point)
        point = point_add(point, point)
        scalar >>= 1
    return result


def point_decode(data):
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    if y >= P:
        return None
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if v * x * x % P == (-u) % P:
        x = x * SQRT_M1 % P
    if v * x * x % P != u:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)


def point_encode(point):
    x, y, z, _ = point
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


BASE = point_decode((4 * pow(5, P - 2, P) % P).to_bytes(32, "little"))


def ed25519_verify(public, message, signature):
    if len(signature) != 64:
        return False
    a, r = point_decode(public), point_decode(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % L
    return point_encode(point_mul(s, BASE)) == point_encode(point_add(r, point_mul(k, a)))


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verified_manifest(jws, jwks):
    parts = jws.split(".")
    if len(parts) != 3:
        raise Altered("manifest: not a compact JWS")
    try:
        header, payload, signature = json.loads(b64url(parts[0])), b64url(parts[1]), b64url(parts[2])
    except ValueError:
        raise Altered("manifest: not a compact JWS")
    if header.get("typ") != MANIFEST_TYP or header.get("alg") != "EdDSA":
        raise Altered("manifest: not a %s signature" % MANIFEST_TYP)
    keys = [k for k in jwks.get("keys", []) if k.get("kid") == header.get("kid") and k.get("kty") == "OKP" and k.get("crv") == "Ed25519"]
    if not keys:
        raise Altered("manifest: signed by key %r, which the key set does not contain" % header.get("kid"))
    if not ed25519_verify(b64url(keys[0]["x"]), (parts[0] + "." + parts[1]).encode("ascii"), signature):
        raise Altered("manifest: the signature does not verify")
    statement = json.loads(payload)
    if not isinstance(statement, dict):
        raise Altered("manifest: the signed statement is not an object")
    return statement


# --- The checks (docs/audit-chain.md, "Verifying an export") ------------------------------------------

def verify(text, jwks):
    is_csv = text.startswith("sequence,")
    entries, jws = from_csv(text) if is_csv else from_jsonl(text)
    if jws is None:
        raise Altered("the signed manifest is missing: the file was truncated or its end altered")
    manifest = verified_manifest(jws, jwks)
    ascending = manifest.get("order") != "desc"
    by_hash = {e["hash"]: e["seq"] for e in entries}
    present = {e["seq"] for e in entries}
    seen = set()
    for i, e in enumerate(entries):
        if event_hash(e["prev"], e["content"]) != e["hash"]:
            raise Altered("event %d does not match its hash" % e["seq"], e["seq"])
        if e["hash"] in seen:
            raise Altered("event %d is a copy of another" % e["seq"], e["seq"])
        seen.add(e["hash"])
        if i == 0:
            continue
        previous = entries[i - 1]
        if (e["seq"] <= previous["seq"]) if ascending else (e["seq"] >= previous["seq"]):
            raise Altered("event %d is out of order" % e["seq"], e["seq"])
        older, newer = (previous, e) if ascending else (e, previous)
        if newer["content"]["time"] < older["content"]["time"]:
            raise Altered("event %d is dated before event %d" % (newer["seq"], older["seq"]), newer["seq"])
        if newer["seq"] == older["seq"] + 1 and newer["prev"] != older["hash"]:
            moved = newer["prev"] in by_hash
            raise Altered("event %d %s" % (newer["seq"], "was moved" if moved else "does not link to the event before it"), newer["seq"])
        if manifest.get("complete") is True and abs(e["seq"] - previous["seq"]) != 1:
            missing = previous["seq"] + (1 if ascending else -1)
            raise Altered("event %d %s" % (missing, "was moved" if missing in present else "is missing"), missing)
    if isinstance(manifest.get("unsealedSequence"), int):
        raise Altered("the gateway found event %d unsealed: written outside it" % manifest["unsealedSequence"], manifest["unsealedSequence"])
    digest = hashlib.sha256("".join("%d:%s\n" % (e["seq"], e["hash"]) for e in entries).encode("ascii")).hexdigest()
    first = entries[0]["seq"] if entries else 0
    last = entries[-1]["seq"] if entries else 0
    if manifest.get("firstSequence") != first or manifest.get("lastSequence") != last or manifest.get("count") != len(entries):
        raise Altered("the manifest lists sequences %s to %s (%s events), the file %d to %d (%d)" % (manifest.get("firstSequence"), manifest.get("lastSequence"), manifest.get("count"), first, last, len(entries)))
    if manifest.get("digest") != digest:
        raise Altered("the events differ from those the manifest lists")
    if manifest.get("format") != ("csv" if is_csv else "jsonl"):
        raise Altered("the manifest is for another format")
    return len(entries), first, last


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: verify-audit-export.py EXPORT_FILE JWKS_FILE\n")
        return 2
    with open(argv[1], encoding="utf-8", newline="") as export_file:
        text = export_file.read()
    with open(argv[2], encoding="utf-8") as jwks_file:
        jwks = json.load(jwks_file)
    try:
        count, first, last = verify(text, jwks)
    except Altered as altered:
        where = "" if altered.sequence is None else " (sequence %d)" % altered.sequence
        print("ALTERED%s: %s" % (where, altered))
        return 1
    print("OK: %d events, sequences %d to %d" % (count, first, last))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
