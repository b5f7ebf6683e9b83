#!/usr/bin/env python3
"""Scripted STUN servers that misbehave the way some real ones do, and a STUN probe that
tells what a server really is, for the lab's --internet (lab-internet.sh).

Why it exists: no third-party server lies, answers from the wrong address or is slow on
purpose, and the lab's verdict on every server must come from code other than the Rust
client it will test.

Servers (each runs until killed; every request gets at most one answer):
  liar IP1 IP2 PORT1 PORT2
      Listens on all four IP:PORT pairs and answers each request from the socket it came
      in on, CHANGE-REQUEST or not, while OTHER-ADDRESS names the diagonal pair and
      RESPONSE-ORIGIN claims the changed address whenever a change was asked for.
  wrong-source IP:PORT REPLY_IP:REPLY_PORT
      A plain server (no OTHER-ADDRESS) that receives on IP:PORT and answers from
      REPLY_IP:REPLY_PORT.
  slow IP:PORT DELAY_MS
      A plain server that answers every request DELAY_MS late.
IPv6 addresses are written in brackets: [2001:db8::1]:3478.

Probe:
  kind LOCAL_IP SERVER_IP PORT [--wait S] [--slow-ms MS]
      One Binding request (three tries, S seconds each, default 1), then, when the answer
      names an alternate, one asking to change IP and port. Prints key=value lines: reply
      (yes|no|refused), from, mapped, other, changed, origin, rtt_ms, change_from, and
      kind, the verdict: plain, 5780, 3489, liar, wrong-source, slow (answer later than MS,
      default 300), silent (no answer), closed (ICMP port unreachable), change-silent (names
      an alternate that never answers a change request).
"""
import heapq
import ipaddress
import select
import socket
import sys
import time

import stunwire

SOFTWARE = "p2pd natlab stunlab.py"


def endpoint(text):
    """'1.2.3.4:5' or '[2001:db8::1]:5' -> (ip, port), the IP in canonical form."""
    host, _, port = text.rpartition(":")
    return str(ipaddress.ip_address(host.strip("[]"))), int(port)


def family(ip):
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def bound(addr):
    s = socket.socket(family(addr[0]), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(addr)
    return s


def requests(sock):
    """(transaction id, CHANGE-REQUEST flags, source) of each Binding request waiting."""
    while True:
        try:
            data, src = sock.recvfrom(2048)
        except BlockingIOError:
            return
        msg = stunwire.parse(data)
        if msg is not None and msg[0] == stunwire.BINDING_REQUEST:
            yield msg[1], msg[2].get("change", 0), src[:2]


def serve_liar(ip1, ip2, p1, p2):
    socks = {(ip, port): bound((ip, port)) for ip in (ip1, ip2) for port in (p1, p2)}
    other_ip, other_port = {ip1: ip2, ip2: ip1}, {p1: p2, p2: p1}
    for s in socks.values():
        s.setblocking(False)
    by_fd = {s.fileno(): (addr, s) for addr, s in socks.items()}
    ready_line()
    while True:
        for s in select.select(list(socks.values()), [], [])[0]:
            (ip, port), _ = by_fd[s.fileno()]
            for tid, change, src in requests(s):
                claimed = (other_ip[ip] if change & stunwire.CHANGE_IP else ip,
                           other_port[port] if change & stunwire.CHANGE_PORT else port)
                reply = stunwire.binding_response(
                    tid, src, origin=claimed, other=(other_ip[ip], other_port[port]),
                    software=SOFTWARE)
                s.sendto(reply, src)


def serve_wrong_source(listen, reply_from):
    inbox, outbox = bound(listen), bound(reply_from)
    inbox.setblocking(False)
    outbox.setblocking(False)
    ready_line()
    while True:
        for s in select.select([inbox, outbox], [], [])[0]:
            for tid, _, src in requests(s):
                # Requests sent to the reply address are read and ignored.
                if s is inbox:
                    outbox.sendto(stunwire.binding_response(tid, src, software=SOFTWARE), src)


def serve_slow(listen, delay_ms):
    s = bound(listen)
    s.setblocking(False)
    pending = []  # (due, seq, reply, destination)
    seq = 0
    ready_line()
    while True:
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, _, reply, dest = heapq.heappop(pending)
            s.sendto(reply, dest)
        wait = pending[0][0] - now if pending else None
        if select.select([s], [], [], wait)[0]:
            for tid, _, src in requests(s):
                seq += 1
                reply = stunwire.binding_response(tid, src, software=SOFTWARE)
                heapq.heappush(pending, (time.monotonic() + delay_ms / 1000, seq, reply, src))


def ready_line():
    print("stunlab: ready", flush=True)


def ask(sock, server, wait, tries, change=0):
    """One Binding transaction: (attributes, reply source, rtt s), "refused" or None."""
    tid = stunwire.new_transaction_id()
    request = stunwire.binding_request(tid, change)
    for _ in range(tries):
        sent = time.monotonic()
        sock.sendto(request, server)
        deadline = sent + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                break
            try:
                data, src = sock.recvfrom(2048)
            except ConnectionRefusedError:
                return "refused"
            msg = stunwire.parse(data)
            if msg is not None and msg[0] == stunwire.BINDING_SUCCESS and msg[1] == tid:
                return msg[2], src[:2], time.monotonic() - sent
    return None


def show(addr):
    if addr is None:
        return "none"
    return ("[{}]:{}" if ":" in addr[0] else "{}:{}").format(*addr)


def probe_kind(local_ip, server, wait, slow_ms):
    s = socket.socket(family(local_ip), socket.SOCK_DGRAM)
    # ICMP errors reach an unconnected socket only with RECVERR: that is how "closed"
    # differs from "silent".
    if family(local_ip) == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, 25, 1)  # IPV6_RECVERR
    else:
        s.setsockopt(socket.IPPROTO_IP, 11, 1)  # IP_RECVERR
    s.bind((local_ip, 0))
    out = {"reply": "no", "kind": "silent"}
    first = ask(s, server, wait, 3)
    if first == "refused":
        out.update(reply="refused", kind="closed")
        return out
    if first is None:
        return out
    attrs, src, rtt = first
    out.update(reply="yes", rtt_ms="{:.1f}".format(rtt * 1000), **{"from": show(src)})
    for key in ("mapped", "other", "changed", "origin"):
        out[key] = show(attrs.get(key) or (attrs.get("mapped_plain") if key == "mapped" else None))
    alternate = attrs.get("other") or attrs.get("changed")
    if src != server:
        out["kind"] = "wrong-source"
    elif alternate is None:
        out["kind"] = "slow" if rtt * 1000 > slow_ms else "plain"
    else:
        changed = ask(s, server, wait, 3, stunwire.CHANGE_IP | stunwire.CHANGE_PORT)
        if changed in (None, "refused"):
            out.update(change_from="none", kind="change-silent")
        else:
            out["change_from"] = show(changed[1])
            if changed[1] == server:
                out["kind"] = "liar"
            elif changed[1] == alternate:
                out["kind"] = "5780" if "other" in attrs else "3489"
            else:
                out["kind"] = "wrong-source"
    s.close()
    return out


def main(argv):
    if len(argv) == 5 and argv[0] == "liar":
        serve_liar(argv[1], argv[2], int(argv[3]), int(argv[4]))
    elif len(argv) == 3 and argv[0] == "wrong-source":
        serve_wrong_source(endpoint(argv[1]), endpoint(argv[2]))
    elif len(argv) == 3 and argv[0] == "slow":
        serve_slow(endpoint(argv[1]), float(argv[2]))
    elif len(argv) >= 4 and argv[0] == "kind":
        opts = dict(zip(argv[4::2], argv[5::2]))
        server = endpoint("[{}]:{}".format(argv[2].strip("[]"), argv[3]))
        out = probe_kind(argv[1], server, float(opts.get("--wait", 1)),
                         float(opts.get("--slow-ms", 300)))
        for key in ("reply", "from", "mapped", "other", "changed", "origin", "rtt_ms",
                    "change_from", "kind"):
            if key in out:
                print("{}={}".format(key, out[key]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
