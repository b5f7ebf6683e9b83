#!/usr/bin/env python3
"""User-space delay line for the NAT lab: copies Ethernet frames between two interfaces,
holding each IP packet back by a fixed one-way delay and dropping it with a fixed
probability.

Why it exists: the lab's kernel has no netem qdisc, and a delay inside the NAT router's
namespace would send packets through its netfilter twice. lab.sh puts this copier in a
namespace of its own, between the router's WAN veth and the internet's, as a slow and lossy
wire: the NAT and the servers see an ordinary link.

  delayline.py IF_A IF_B --control FILE [--stats FILE] [--pidfile FILE] [--seed N]

FILE holds "rtt=MS loss=PCT" (either may be left out: 0). Every IPv4 and IPv6 packet in
either direction is dropped with probability PCT/100, independently of all others, and the
rest are sent on RTT/2 ms after the kernel received them. ARP and IPv6 neighbour discovery
pass at once and are never dropped: they belong to the link, not to the path it stands
for. Frames leave in the order they came, per direction, even across a change of settings.
SIGHUP re-reads FILE; SIGUSR1 writes counters to the stats file (also written on SIGTERM);
lateness_max_ms there is how far behind its due time the worst frame left.

The senders must have TX checksum offload off (lab.sh turns it off with ethtool): a copied
frame is sent as it was read, and a checksum left to offload would arrive unfinished.
"""
import argparse
import ctypes
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_IGNORE_OUTGOING = 23
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
SO_TIMESTAMPNS = 35
PR_SET_TIMERSLACK = 29
# Router solicitation .. redirect: the IPv6 neighbour-discovery messages.
ND_TYPES = range(133, 138)
# Frames held at once; beyond it a frame is dropped and counted (a runaway sender must not
# eat the machine's memory).
QUEUE_LIMIT = 200_000
BUFFER_BYTES = 8 << 20


def read_control(path):
    """(one-way delay in s, loss probability) from 'rtt=MS loss=PCT'."""
    rtt_ms, loss_pct = 0.0, 0.0
    with open(path) as f:
        for word in f.read().split():
            key, _, value = word.partition("=")
            if key == "rtt":
                rtt_ms = float(value)
            elif key == "loss":
                loss_pct = float(value)
    if rtt_ms < 0 or not 0 <= loss_pct <= 100:
        raise ValueError("rtt must be >= 0 and loss in 0..100, got {}".format((rtt_ms, loss_pct)))
    return rtt_ms / 2000.0, loss_pct / 100.0


def is_link_control(frame):
    """ARP and IPv6 neighbour discovery: passed at once, never dropped."""
    if len(frame) < 14:
        return True
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    if ethertype == ETH_P_ARP:
        return True
    # An ND message follows the 40-byte IPv6 header directly (next header 58).
    return (ethertype == ETH_P_IPV6 and len(frame) > 54 and frame[20] == 58
            and frame[54] in ND_TYPES)


def open_port(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((ifname, 0))
    # Only frames arriving from the wire: never our own copies going out.
    s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    for opt in (SO_RCVBUFFORCE, SO_SNDBUFFORCE):
        s.setsockopt(socket.SOL_SOCKET, opt, BUFFER_BYTES)
    s.setblocking(False)
    return s


def kernel_time(ancdata):
    """When the kernel received the frame (CLOCK_REALTIME), or now."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack_from("qq", data)
            return sec + nsec / 1e9
    return time.time()


def sharpen_timing():
    """Wake-ups on time: no timer slack, and a real-time priority where allowed."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except (OSError, AttributeError):
        pass


class Line:
    def __init__(self, if_a, if_b, control, stats, seed):
        self.ports = [open_port(if_a), open_port(if_b)]
        self.names = [if_a, if_b]
        self.control = control
        self.stats_path = stats
        self.rng = random.Random(seed)
        self.delay, self.loss = read_control(control)
        self.queue = []  # (due, seq, out index, frame)
        self.seq = 0
        self.last_due = [0.0, 0.0]  # per direction, to keep frames in order
        self.counts = {k: [0, 0] for k in ("forwarded", "lost", "link_control", "send_errors",
                                           "overflow", "kernel_drops")}
        self.lateness_max = 0.0
        self.queue_max = 0

    def reload(self, *_):
        try:
            self.delay, self.loss = read_control(self.control)
        except (OSError, ValueError) as e:
            print("delayline: keeping old settings: {}".format(e), file=sys.stderr)

    def write_stats(self, *_):
        if not self.stats_path:
            return
        for i, s in enumerate(self.ports):
            raw = s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
            self.counts["kernel_drops"][i] += struct.unpack("II", raw)[1]
        lines = ["rtt_ms={:g}".format(self.delay * 2000), "loss_pct={:g}".format(self.loss * 100)]
        for key, (ab, ba) in self.counts.items():
            lines.append("{}={} {}".format(key, ab, ba))
        lines.append("lateness_max_ms={:.3f}".format(self.lateness_max * 1000))
        lines.append("queue_max={}".format(self.queue_max))
        tmp = self.stats_path + ".tmp"
        with open(tmp, "w") as f:
            f.write("# counters per direction: {0}->{1} {1}->{0}\n".format(*self.names))
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, self.stats_path)

    def send(self, out, frame, direction, counter="forwarded"):
        try:
            self.ports[out].send(frame)
            self.counts[counter][direction] += 1
        except OSError:
            self.counts["send_errors"][direction] += 1

    def take(self, inp):
        """Reads every frame waiting on port `inp` and queues (or drops) it."""
        out = 1 - inp
        while True:
            try:
                frame, anc, _, _ = self.ports[inp].recvmsg(65536, socket.CMSG_SPACE(16))
            except BlockingIOError:
                return
            if is_link_control(frame):
                self.send(out, frame, inp, "link_control")
                continue
            if self.loss > 0 and self.rng.random() < self.loss:
                self.counts["lost"][inp] += 1
                continue
            if len(self.queue) >= QUEUE_LIMIT:
                self.counts["overflow"][inp] += 1
                continue
            due = max(kernel_time(anc) + self.delay, self.last_due[inp])
            self.last_due[inp] = due
            self.seq += 1
            heapq.heappush(self.queue, (due, self.seq, out, frame))
            self.queue_max = max(self.queue_max, len(self.queue))

    def release(self):
        """Sends every frame that is due; seconds until the next one (None: none held)."""
        while self.queue:
            now = time.time()
            due, _, out, frame = self.queue[0]
            if due > now:
                return due - now
            heapq.heappop(self.queue)
            self.lateness_max = max(self.lateness_max, now - due)
            self.send(out, frame, 1 - out)
        return None

    def run(self):
        by_fd = {s.fileno(): i for i, s in enumerate(self.ports)}
        while True:
            wait = self.release()
            ready, _, _ = select.select(self.ports, [], [], wait)
            for s in ready:
                self.take(by_fd[s.fileno()])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("if_a")
    p.add_argument("if_b")
    p.add_argument("--control", required=True)
    p.add_argument("--stats")
    p.add_argument("--pidfile")
    p.add_argument("--seed", type=int)
    args = p.parse_args()
    if args.pidfile:
        # Written by the copier itself: a launcher (ip netns exec, an interpreter shim)
        # may stand between lab.sh and this process.
        with open(args.pidfile, "w") as f:
            f.write("{}\n".format(os.getpid()))
    line = Line(args.if_a, args.if_b, args.control, args.stats, args.seed)

    def stop(*_):
        line.write_stats()
        sys.exit(0)

    signal.signal(signal.SIGHUP, line.reload)
    signal.signal(signal.SIGUSR1, line.write_stats)
    signal.signal(signal.SIGTERM, stop)
    sharpen_timing()
    line.write_stats()
    print("delayline: {} <-> {} ready".format(args.if_a, args.if_b), flush=True)
    line.run()


if __name__ == "__main__":
    main()
