#!/usr/bin/env python3
"""Tiny UDP prober that checks the NAT lab without any STUN code.

Why it exists: lab.sh must be verified independently of the Rust STUN client and server it
will later test, so this speaks a trivial text protocol instead of STUN.

  serve IP1 IP2 PORT1 PORT2
      Listens on IP1:PORT1, IP1:PORT2, IP2:PORT1, IP2:PORT2 (the RFC 5780 address
      pairs). A datagram "ask same|port|ip|both" is answered "seen SRC_IP:SRC_PORT" from the
      socket it arrived on (same), the other port (port), the other IP (ip) or both (both),
      which is what CHANGE-REQUEST does.

  probe LOCAL_IP IP1 IP2 PORT1 PORT2 [--wait SECONDS]
      Runs the RFC 5780 sequence from one socket, filtering tests first (everything to
      IP1:PORT1), then the mapping tests (IP2:PORT1, IP2:PORT2), then a hairpin test (a
      second socket sends to the first's mapping) and an allocation test (6 fresh sockets,
      consecutive local ports, each asks IP1:PORT1). Prints one "key=value" per line:
      mapped, mapping (none|eim|adm|apdm), filtering (none-heard|eif|adf|apdf),
      hairpin (yes SRC|no), alloc (preserve|sequential|other) and the mapped ports.

Only lab addresses are used; every wait has a timeout.
"""
import select
import socket
import sys


def serve(ip1, ip2, p1, p2):
    socks = {}
    for ip in (ip1, ip2):
        for port in (p1, p2):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((ip, port))
            socks[(ip, port)] = s
    other_ip = {ip1: ip2, ip2: ip1}
    other_port = {p1: p2, p2: p1}
    by_fd = {s.fileno(): (addr, s) for addr, s in socks.items()}
    while True:
        ready, _, _ = select.select(list(socks.values()), [], [])
        for s in ready:
            (ip, port), _ = by_fd[s.fileno()]
            data, src = s.recvfrom(512)
            words = data.decode(errors="replace").split()
            if len(words) != 2 or words[0] != "ask":
                continue
            reply_ip, reply_port = {
                "same": (ip, port),
                "port": (ip, other_port[port]),
                "ip": (other_ip[ip], port),
                "both": (other_ip[ip], other_port[port]),
            }.get(words[1], (ip, port))
            socks[(reply_ip, reply_port)].sendto(
                "seen {}:{}".format(*src).encode(), src)


def ask(sock, dest, what, wait):
    """Send 'ask WHAT' to dest; return (mapped 'ip:port', reply source) or None."""
    sock.sendto("ask {}".format(what).encode(), dest)
    if not select.select([sock], [], [], wait)[0]:
        return None
    data, src = sock.recvfrom(512)
    words = data.decode(errors="replace").split()
    if len(words) == 2 and words[0] == "seen":
        return words[1], src
    return None


def probe(local_ip, ip1, ip2, p1, p2, wait):
    out = {}
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((local_ip, 0))
    local = "{}:{}".format(*s.getsockname())
    primary = (ip1, p1)
    # Filtering tests before anything is sent to IP2: traffic to IP2 would open an
    # address-dependent filter for the change-IP reply and fake a full cone.
    test1 = ask(s, primary, "same", wait)
    if test1 is None:
        print("mapped=none\nmapping=none\nfiltering=none-heard")
        return
    mapped = test1[0]
    out["mapped"] = mapped
    test2 = ask(s, primary, "both", wait)
    test3 = ask(s, primary, "port", wait)
    if test2 is not None and test2[1] == (ip2, p2):
        out["filtering"] = "eif"
    elif test3 is not None and test3[1] == (ip1, p2):
        out["filtering"] = "adf"
    else:
        out["filtering"] = "apdf"
    alt_ip = ask(s, (ip2, p1), "same", wait)
    alt_both = ask(s, (ip2, p2), "same", wait)
    if mapped == local:
        out["mapping"] = "none"
    elif alt_ip is None or alt_both is None:
        out["mapping"] = "unknown"
    elif alt_ip[0] == mapped:
        out["mapping"] = "eim"
    elif alt_both[0] == alt_ip[0]:
        out["mapping"] = "adm"
    else:
        out["mapping"] = "apdm"
    out["mapped_alt_ip"] = alt_ip[0] if alt_ip else "none"
    out["mapped_alt_ip_port"] = alt_both[0] if alt_both else "none"

    # Hairpin: a second socket sends to the first socket's mapping.
    h = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    h.bind((local_ip, 0))
    mip, mport = mapped.rsplit(":", 1)
    h.sendto(b"hairpin", (mip, int(mport)))
    if select.select([s], [], [], wait)[0]:
        data, src = s.recvfrom(512)
        out["hairpin"] = "yes {}:{}".format(*src)
    else:
        out["hairpin"] = "no"
    h.close()
    s.close()

    # Allocation: consecutive local ports, one fresh flow each.
    base = 31000
    pairs = []
    for i in range(6):
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind((local_ip, base + i))
        r = ask(a, primary, "same", wait)
        a.close()
        if r is not None:
            pairs.append((base + i, int(r[0].rsplit(":", 1)[1])))
    steps = [b[1] - a[1] for a, b in zip(pairs, pairs[1:])]
    if pairs and all(l == m for l, m in pairs):
        out["alloc"] = "preserve"
    elif steps and all(st == 1 for st in steps):
        out["alloc"] = "sequential"
    else:
        out["alloc"] = "other"
    out["alloc_ports"] = ",".join("{}>{}".format(l, m) for l, m in pairs)
    for key in ("mapped", "mapping", "filtering", "hairpin", "alloc",
                "mapped_alt_ip", "mapped_alt_ip_port", "alloc_ports"):
        print("{}={}".format(key, out.get(key, "none")))


def main(argv):
    if len(argv) >= 5 and argv[0] == "serve":
        serve(argv[1], argv[2], int(argv[3]), int(argv[4]))
    elif len(argv) >= 6 and argv[0] == "probe":
        wait = float(argv[7]) if len(argv) >= 8 and argv[6] == "--wait" else 0.5
        probe(argv[1], argv[2], argv[3], int(argv[4]), int(argv[5]), wait)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
