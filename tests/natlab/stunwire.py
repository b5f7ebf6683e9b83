"""STUN messages for the lab's scripted servers and probe (stunlab.py), written apart from
the Rust STUN code so that the lab checks it rather than repeats it.

Binding requests and responses only: RFC 5389 header and the address attributes of
RFC 5389, RFC 5780 and RFC 3489. Parsing never raises on bad input; it returns None.
"""
import ipaddress
import os
import struct
import zlib

MAGIC = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
CHANGE_IP = 0x4
CHANGE_PORT = 0x2

MAPPED_ADDRESS = 0x0001
SOURCE_ADDRESS = 0x0004
CHANGED_ADDRESS = 0x0005
CHANGE_REQUEST = 0x0003
XOR_MAPPED_ADDRESS = 0x0020
XOR_MAPPED_ADDRESS_OLD = 0x8020
SOFTWARE = 0x8022
FINGERPRINT = 0x8028
RESPONSE_ORIGIN = 0x802B
OTHER_ADDRESS = 0x802C

ADDRESS_NAMES = {
    MAPPED_ADDRESS: "mapped_plain",
    SOURCE_ADDRESS: "source",
    CHANGED_ADDRESS: "changed",
    XOR_MAPPED_ADDRESS: "mapped",
    XOR_MAPPED_ADDRESS_OLD: "mapped",
    RESPONSE_ORIGIN: "origin",
    OTHER_ADDRESS: "other",
}


def new_transaction_id():
    return os.urandom(12)


def _attr(kind, value):
    pad = (4 - len(value) % 4) % 4
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * pad


def _address(kind, addr, tid):
    """An address attribute; XOR-encoded for the XOR kinds."""
    ip = ipaddress.ip_address(addr[0])
    port, raw = addr[1], ip.packed
    if kind in (XOR_MAPPED_ADDRESS, XOR_MAPPED_ADDRESS_OLD):
        port ^= MAGIC >> 16
        key = struct.pack("!I", MAGIC) + tid
        raw = bytes(b ^ k for b, k in zip(raw, key))
    family = 1 if ip.version == 4 else 2
    return _attr(kind, struct.pack("!BBH", 0, family, port) + raw)


def _message(kind, tid, body):
    return struct.pack("!HHI", kind, len(body), MAGIC) + tid + body


def binding_request(tid, change=0):
    body = _attr(CHANGE_REQUEST, struct.pack("!I", change)) if change else b""
    return _message(BINDING_REQUEST, tid, body)


def binding_response(tid, mapped, origin=None, other=None, software=None):
    """A success response: XOR-MAPPED-ADDRESS and MAPPED-ADDRESS, then what is given."""
    body = _address(XOR_MAPPED_ADDRESS, mapped, tid) + _address(MAPPED_ADDRESS, mapped, tid)
    if origin is not None:
        body += _address(RESPONSE_ORIGIN, origin, tid)
    if other is not None:
        body += _address(OTHER_ADDRESS, other, tid)
    if software:
        body += _attr(SOFTWARE, software.encode())
    # The fingerprint covers the message with its own length already counted.
    head = _message(BINDING_SUCCESS, tid, body)
    head = head[:2] + struct.pack("!H", len(body) + 8) + head[4:]
    crc = (zlib.crc32(head) ^ 0x5354554E) & 0xFFFFFFFF
    return head + _attr(FINGERPRINT, struct.pack("!I", crc))


def _parse_address(kind, value, tid):
    if len(value) < 4:
        return None
    family, port = value[1], struct.unpack_from("!H", value, 2)[0]
    size = {1: 4, 2: 16}.get(family)
    if size is None or len(value) < 4 + size:
        return None
    raw = value[4:4 + size]
    if kind in (XOR_MAPPED_ADDRESS, XOR_MAPPED_ADDRESS_OLD):
        port ^= MAGIC >> 16
        key = struct.pack("!I", MAGIC) + tid
        raw = bytes(b ^ k for b, k in zip(raw, key))
    return str(ipaddress.ip_address(raw)), port


def parse(data):
    """(type, transaction id, {attribute name: value}) or None. Names are those of
    ADDRESS_NAMES plus "change" (CHANGE-REQUEST flags) and "software"."""
    if len(data) < 20:
        return None
    kind, length, magic = struct.unpack_from("!HHI", data)
    if magic != MAGIC or kind & 0xC000 or 20 + length > len(data):
        return None
    tid = data[8:20]
    attrs, at, end = {}, 20, 20 + length
    while at + 4 <= end:
        akind, alen = struct.unpack_from("!HH", data, at)
        value = data[at + 4:at + 4 + alen]
        if len(value) < alen:
            return None
        if akind in ADDRESS_NAMES:
            addr = _parse_address(akind, value, tid)
            if addr is not None:
                attrs.setdefault(ADDRESS_NAMES[akind], addr)
        elif akind == CHANGE_REQUEST and alen == 4:
            attrs["change"] = struct.unpack("!I", value)[0]
        elif akind == SOFTWARE:
            attrs["software"] = value.decode(errors="replace")
        at += 4 + alen + (4 - alen % 4) % 4
    return kind, tid, attrs
