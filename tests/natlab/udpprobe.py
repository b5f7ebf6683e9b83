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

  echo IP PORT
      Answers "echo RUN SEQ" with "echo RUN SEQ K", K being how many requests of RUN it
      has received, and "count RUN" with "count RUN K": what `rtt` needs to tell the loss
      of each direction apart.

  rtt LOCAL_IP IP PORT [--count N] [--interval MS] [--expect-rtt MS --expect-loss PCT]
      Sends N (default 200) echo requests, one every MS (default 5) ms, and prints sent,
      received, server_received, loss_out_pct (lost on the way there), loss_back_pct (on
      the way back), rtt_{min,median,p90,max}_ms, reordered (replies overtaken by a later
      request's reply) and duplicates. With --expect-*, also verdict=ok or verdict=bad:
      WHY (exit status 1): the median RTT must lie in [MS, 1.05 MS + 3 ms] and each
      direction's loss within 4 standard deviations (+1 point) of PCT, with nothing
      reordered or duplicated.

IPv6 addresses work wherever IPv4 ones do. Only lab addresses are used; every wait has a
timeout.
"""
import math
import os
import select
import socket
import statistics
import sys
import time

from delayline import SO_TIMESTAMPNS, kernel_time, sharpen_timing


def family(ip):
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def serve(ip1, ip2, p1, p2):
    socks = {}
    for ip in (ip1, ip2):
        for port in (p1, p2):
            s = socket.socket(family(ip), socket.SOCK_DGRAM)
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
        return words[1], src[:2]
    return None


def probe(local_ip, ip1, ip2, p1, p2, wait):
    out = {}
    s = socket.socket(family(local_ip), socket.SOCK_DGRAM)
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
    h = socket.socket(family(local_ip), socket.SOCK_DGRAM)
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
        a = socket.socket(family(local_ip), socket.SOCK_DGRAM)
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


def roomy_socket(ip):
    """A UDP socket with room for a fast run: datagrams dropped at a full buffer of the
    echo pair would be counted against the path."""
    s = socket.socket(family(ip), socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE (root)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    return s


def echo(ip, port):
    # Answers on time like the delay line forwards on time: a busy machine must not
    # show up as path delay.
    sharpen_timing()
    s = roomy_socket(ip)
    s.bind((ip, port))
    seen = {}  # run -> requests received
    print("echo: ready", flush=True)
    while True:
        data, src = s.recvfrom(512)
        words = data.decode(errors="replace").split()
        if len(words) == 3 and words[0] == "echo":
            seen[words[1]] = seen.get(words[1], 0) + 1
            s.sendto("echo {} {} {}".format(words[1], words[2], seen[words[1]]).encode(), src)
        elif len(words) == 2 and words[0] == "count":
            s.sendto("count {} {}".format(words[1], seen.get(words[1], 0)).encode(), src)


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def rtt(local_ip, ip, port, count, interval, expect):
    s = roomy_socket(local_ip)
    # Replies are timed by the kernel on arrival, so a reply read late (this process was
    # busy sending) still counts its true RTT. Both ends use CLOCK_REALTIME.
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.bind((local_ip, 0))
    dest = (ip, port)
    run = os.urandom(6).hex()
    sent_at, rtts, order, seen, dups = {}, [], [], set(), 0
    seq, next_send, deadline = 0, time.time(), None
    while True:
        now = time.time()
        if seq < count and now >= next_send:
            sent_at[seq] = time.time()
            s.sendto("echo {} {}".format(run, seq).encode(), dest)
            seq += 1
            next_send += interval
            continue
        if seq == count and deadline is None:
            # The replies still on their way: twice the slowest seen, at least half a second.
            deadline = now + max(0.5, 2 * max(rtts, default=1.0))
        left = next_send - now if seq < count else deadline - now
        if seq == count and left <= 0:
            break
        if not select.select([s], [], [], max(0.0, left))[0]:
            continue
        data, anc, _, _ = s.recvmsg(512, socket.CMSG_SPACE(16))
        words = data.decode(errors="replace").split()
        if len(words) != 4 or words[0] != "echo" or words[1] != run:
            continue
        n = int(words[2]) if words[2].isdigit() else -1
        if n not in sent_at:
            continue
        if n in seen:
            dups += 1
            continue
        rtts.append(kernel_time(anc) - sent_at[n])
        order.append(n)
        seen.add(n)
    server = server_count(s, dest, run, statistics.median(rtts) if rtts else 0.5)
    s.close()
    out = {"sent": count, "received": len(order),
           "server_received": "unknown" if server is None else server,
           "reordered": sum(1 for a, b in zip(order, order[1:]) if b < a),
           "duplicates": dups}
    if server is not None:
        out["loss_out_pct"] = round(100.0 * (1 - server / count), 2)
        out["loss_back_pct"] = round(100.0 * (1 - len(order) / server), 2) if server else 0.0
    if rtts:
        ms = sorted(x * 1000 for x in rtts)
        out.update(rtt_min_ms=round(ms[0], 3), rtt_median_ms=round(statistics.median(ms), 3),
                   rtt_p90_ms=round(percentile(ms, 0.9), 3), rtt_max_ms=round(ms[-1], 3))
    bad = judge(out, expect) if expect else None
    for key, value in out.items():
        print("{}={}".format(key, value))
    if expect:
        print("verdict=" + ("ok" if not bad else "bad: " + "; ".join(bad)))
    return not bad


def server_count(s, dest, run, rtt_s):
    """How many requests of `run` reached the server; None if 20 asks went unanswered."""
    for _ in range(20):
        s.sendto("count {}".format(run).encode(), dest)
        deadline = time.monotonic() + 2 * rtt_s + 0.2
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                break
            words = s.recvfrom(512)[0].decode(errors="replace").split()
            if len(words) == 3 and words[0] == "count" and words[1] == run:
                return int(words[2])
    return None


def judge(out, expect):
    """What is wrong with a measurement against (rtt ms, loss %): a list of reasons."""
    want_rtt, want_loss = expect
    bad = []
    median = out.get("rtt_median_ms")
    if median is None:
        bad.append("no replies")
    elif not want_rtt - 0.05 <= median <= 1.05 * want_rtt + 3:
        bad.append("median RTT {} ms for {} ms".format(median, want_rtt))
    if out["server_received"] == "unknown":
        bad.append("the server's count never came back")
    else:
        p = want_loss / 100
        for key, n in (("loss_out_pct", out["sent"]), ("loss_back_pct", out["server_received"])):
            tolerance = 100 * (4 * math.sqrt(p * (1 - p) / max(n, 1)) + 0.01)
            if abs(out[key] - want_loss) > tolerance:
                bad.append("{} {} % for {} % (tolerance {:.1f})".format(
                    key, out[key], want_loss, tolerance))
    if out["reordered"] or out["duplicates"]:
        bad.append("{} reordered, {} duplicated".format(out["reordered"], out["duplicates"]))
    return bad


def main(argv):
    if len(argv) >= 5 and argv[0] == "serve":
        serve(argv[1], argv[2], int(argv[3]), int(argv[4]))
    elif len(argv) >= 6 and argv[0] == "probe":
        wait = float(argv[7]) if len(argv) >= 8 and argv[6] == "--wait" else 0.5
        probe(argv[1], argv[2], argv[3], int(argv[4]), int(argv[5]), wait)
    elif len(argv) == 3 and argv[0] == "echo":
        echo(argv[1], int(argv[2]))
    elif len(argv) >= 4 and argv[0] == "rtt":
        opts = dict(zip(argv[4::2], argv[5::2]))
        expect = None
        if "--expect-rtt" in opts or "--expect-loss" in opts:
            expect = (float(opts.get("--expect-rtt", 0)), float(opts.get("--expect-loss", 0)))
        ok = rtt(argv[1], argv[2], int(argv[3]), int(opts.get("--count", 200)),
                 float(opts.get("--interval", 5)) / 1000, expect)
        sys.exit(0 if ok else 1)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
