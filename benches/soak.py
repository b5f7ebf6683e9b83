#!/usr/bin/env python3
"""Soak cases for p2pd-repl, each against a fresh process, sampled from /proc every 20 ms:
peak RSS, file descriptors at start, peak and end, failures. Run through benches/soak.sh
(which builds the release binary); everything stays on loopback.

Cases (--case, repeatable; default all):
  tasks-1000, tasks-10000  N TCP echo round trips started with create_task (task_pipes.rhai)
  udp-flood                a subscribed UDP pipe that does not read, flooded for --flood-secs
  interface-starts         1000 Interface("lo").start() in one process (interface_starts.rhai)
  stun-fuzz                --datagrams fuzzed datagrams at `p2pd-repl stun-server`, probed
  tcp-hostile              --conns TCP connections that stall mid-request, at the default
                           connection cap and timeout, then with the cap at --conns and a
                           300 s timeout (all held at once), probed over UDP
"""

import argparse
import os
import random
import resource
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
COOKIE = 0x2112A442


def raise_fd_limit(want=65536):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in (max(want, hard), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, limit), limit))
            return
        except (ValueError, OSError):
            continue


class Watch:
    """Samples a process's VmRSS and open fds until stopped."""

    def __init__(self, pid):
        self.pid, self.peak_rss, self.peak_fds = pid, 0, 0
        self.first_fds = self.last_fds = None
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def sample(self):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        self.peak_rss = max(self.peak_rss, int(line.split()[1]))
            fds = len(os.listdir(f"/proc/{self.pid}/fd"))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        self.peak_fds = max(self.peak_fds, fds)
        if self.first_fds is None:
            self.first_fds = fds
        self.last_fds = fds
        return fds

    def loop(self):
        while self.running:
            self.sample()
            time.sleep(0.02)

    def stop(self):
        self.sample()
        self.running = False
        self.thread.join()

    def figures(self):
        return f"peak RSS {self.peak_rss / 1024:.1f} MiB, fds {self.first_fds} -> peak {self.peak_fds} -> {self.last_fds}"


class Proc:
    """A p2pd-repl child with its output read line by line, stderr counted."""

    def __init__(self, repl, args):
        self.p = subprocess.Popen(
            [repl, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=raise_fd_limit, env={**os.environ, "NO_COLOR": "1"})
        self.watch = Watch(self.p.pid)
        self.err_lines, self.err_first = 0, []
        threading.Thread(target=self.read_err, daemon=True).start()

    def read_err(self):
        for line in self.p.stderr:
            self.err_lines += 1
            if len(self.err_first) < 2:
                self.err_first.append(line.strip()[:200])

    def line(self, prefix, timeout=60):
        """The next stdout line starting with prefix (others are kept in self.seen)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError(f"p2pd-repl ended before {prefix!r}; stderr: {self.err_first}")
            if line.startswith(prefix):
                return line.strip()
        raise RuntimeError(f"no {prefix!r} within {timeout} s")

    def finish(self, timeout=600):
        try:
            rest, _ = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rest, _ = self.p.communicate()
        self.watch.stop()
        return rest or ""

    def stop(self):
        self.p.terminate()
        return self.finish(10)


def fields(line):
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


def binding_request(txid=None, attrs=b""):
    txid = txid or os.urandom(12)
    return struct.pack("!HHI", 0x0001, len(attrs), COOKIE) + txid + attrs


def probe_udp(addr, timeout=1.0):
    """True if the server answers one Binding request in time."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        req = binding_request()
        try:
            s.sendto(req, addr)
            while True:
                data, _ = s.recvfrom(2048)
                if data[8:20] == req[8:20]:
                    return True
        except OSError:
            return False


def probe_tcp(addr, timeout=2.0):
    try:
        with socket.create_connection(addr, timeout=timeout) as s:
            req = binding_request()
            s.sendall(req)
            data = s.recv(2048)
            return data[8:20] == req[8:20]
    except OSError:
        return False


class Prober:
    """Probes a STUN server over UDP every `every` seconds while load runs."""

    def __init__(self, addr, every=0.1):
        self.addr, self.every, self.sent, self.answered = addr, every, 0, 0
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while self.running:
            self.sent += 1
            self.answered += probe_udp(self.addr)
            time.sleep(self.every)

    def stop(self):
        self.running = False
        self.thread.join()
        return f"UDP probes answered {self.answered}/{self.sent}"


def stun_server(repl, extra=()):
    proc = Proc(repl, ["stun-server", *extra, "127.0.0.1:0", "127.0.0.2:0"])
    first = proc.line("STUN server listening on")
    host, port = first.split()[4].rsplit(":", 1)
    return proc, (host, int(port))


def case_tasks(repl, n, _args):
    started = time.time()
    proc = Proc(repl, [os.path.join(HERE, "soak", "task_pipes.rhai"), str(n)])
    out = proc.finish()
    lines = out.splitlines()
    result = next((l for l in lines if l.startswith("ok=")), "ok=? failed=?")
    first = next((l for l in lines if l.startswith("first error:")), "")
    f = fields(result)
    note = f" ({first[:160]}; {proc.err_lines} lines on stderr)" if first else ""
    return (f"{n} task pipes: ok {f.get('ok')}, failed {f.get('failed')}, "
            f"{time.time() - started:.1f} s, {proc.watch.figures()}{note}")


def flooder(port, secs, counter):
    """Sends 64-byte datagrams as fast as one process can, for secs seconds."""
    payload = b"x" * 64
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("127.0.0.1", port))
        sent, until = 0, time.time() + secs
        while time.time() < until:
            for _ in range(256):
                try:
                    s.send(payload)
                    sent += 1
                except OSError:
                    pass
        counter.put(sent)


def in_processes(count, target, args_of):
    """Runs target(*args_of(i), queue) in `count` processes; the sum of what they put."""
    import multiprocessing
    queue = multiprocessing.Queue()
    senders = [multiprocessing.Process(target=target, args=(*args_of(i), queue)) for i in range(count)]
    for s in senders:
        s.start()
    total = sum(queue.get() for _ in senders)
    for s in senders:
        s.join()
    return total


def case_udp_flood(repl, args):
    proc = Proc(repl, [os.path.join(HERE, "soak", "udp_flood.rhai"), str(args.flood_secs)])
    port = int(proc.line("port=").split("=")[1])
    sent = in_processes(args.flooders, flooder, lambda i: (port, args.flood_secs))
    queued = fields(proc.line("queued="))
    proc.line("drained")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"marker", ("127.0.0.1", port))
    marker = proc.line("marker=")
    proc.finish(30)
    return (f"UDP flood {args.flood_secs} s: {sent} datagrams sent ({sent / args.flood_secs / 1000:.0f}k/s), "
            f"queued {queued.get('queued')}, dropped {queued.get('dropped')}, {marker}, {proc.watch.figures()}")


def case_interface_starts(repl, args):
    proc = Proc(repl, [os.path.join(HERE, "soak", "interface_starts.rhai"), str(args.starts)])
    proc.line("warm")
    time.sleep(0.2)
    fds_at_start = proc.watch.sample()
    result = fields(proc.line("ok=", timeout=600))
    first = ""
    done = proc.line("")
    if done.startswith("first failure"):
        first = f" ({done[:160]})"
        proc.line("done")
    fds_after = proc.watch.sample()
    proc.finish(30)
    return (f"{args.starts} interface starts: ok {result.get('ok')}, failed {result.get('failed')}, "
            f"{float(result.get('secs', 0)):.2f} s, fds {fds_at_start} after the first, {fds_after} after all, "
            f"peak RSS {proc.watch.peak_rss / 1024:.1f} MiB{first}")


def fuzzed(rng, bases):
    d = bytearray(rng.choice(bases))
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        if op == 0 and d:
            d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
        elif op == 1 and len(d) > 3:
            i = rng.randrange(len(d) - 1)
            d[i:i + 2] = struct.pack("!H", rng.choice([0, 4, 8, 0xfffc, 0xffff, len(d)]))
        elif op == 2:
            d[rng.randrange(len(d) + 1):] = b""
        elif op == 3:
            d += rng.randbytes(rng.randrange(1, 64))
        elif op == 4 and d:
            d[rng.randrange(len(d))] = rng.randrange(256)
        else:
            d = bytearray(rng.randbytes(rng.randrange(0, 120)))
    return bytes(d)


def fuzz_sender(addr, count, seed, out):
    rng = random.Random(seed)
    bases = [
        binding_request(),
        binding_request(attrs=struct.pack("!HHI", 0x0003, 4, 0x06)),  # CHANGE-REQUEST ip+port
        binding_request(attrs=struct.pack("!HH", 0x0026, 64) + b"\0" * 64),  # PADDING
        binding_request(attrs=struct.pack("!HH", 0x8022, 4) + b"fuzz"),  # SOFTWARE
        struct.pack("!HHI", 0x0001, 0, 0x01020304) + os.urandom(12),  # RFC 3489
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        sent = 0
        for _ in range(count):
            try:
                s.sendto(fuzzed(rng, bases), addr)
                sent += 1
            except BlockingIOError:
                time.sleep(0.0001)
            except OSError:
                pass
            if sent % 4096 == 0:
                try:  # the server's answers: read them so they do not pile up
                    while s.recv(4096):
                        pass
                except OSError:
                    pass
        out.put(sent)


def case_stun_fuzz(repl, args):
    proc, addr = stun_server(repl)
    prober = Prober(addr, 0.2)
    started = time.time()
    per = args.datagrams // args.flooders
    sent = in_processes(args.flooders, fuzz_sender, lambda i: (addr, per, 1000 + i))
    took = time.time() - started
    probes = prober.stop()
    after = f"after: UDP {'answers' if probe_udp(addr) else 'SILENT'}, TCP {'answers' if probe_tcp(addr) else 'SILENT'}"
    proc.stop()
    return (f"STUN fuzz: {sent} datagrams in {took:.1f} s, {probes}, {after}, {proc.watch.figures()}")


def stalled_request():
    return struct.pack("!HHI", 0x0001, 2028, COOKIE) + b"\7" * 12 + b"\0" * 1000


def case_tcp_hostile(repl, args, cap):
    # With the cap raised, the timeout is too, so that every connection is held at once.
    extra = ["--max-connections", str(cap), "--tcp-timeout", "300"] if cap else []
    proc, addr = stun_server(repl, extra)
    prober = Prober(addr, 0.1)
    socks, refused = [], 0
    started = time.time()
    for _ in range(args.conns):
        try:
            s = socket.create_connection(addr, timeout=5)
            s.sendall(stalled_request())
            socks.append(s)
        except OSError:
            refused += 1
    opened = time.time() - started
    time.sleep(1.0)
    proc.watch.sample()
    # The newest connections are still held; count what the server closed meanwhile.
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            closed += s.recv(64) == b""
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    http_closed = 0
    for _ in range(200):
        try:
            with socket.create_connection(addr, timeout=2) as h:
                h.sendall(b"GET / HTTP/1.1\r\nHost: stun\r\n\r\n")
                h.settimeout(1.0)
                http_closed += h.recv(64) == b""
        except OSError:
            http_closed += 1
    probes = prober.stop()
    tcp_ok = probe_tcp(addr)
    for s in socks:
        s.close()
    proc.stop()
    label = f"--max-connections {cap} --tcp-timeout 300" if cap else "default cap (512) and timeout (3 s)"
    return (f"{args.conns} stalled TCP connections, {label}: opened in {opened:.1f} s "
            f"({refused} refused), {len(socks) - closed} still held after 1 s, 200/200 HTTP closed at once: "
            f"{http_closed == 200}, {probes}, TCP binding after: {tcp_ok}, {proc.watch.figures()}")


CASES = ["tasks-1000", "tasks-10000", "udp-flood", "interface-starts", "stun-fuzz", "tcp-hostile"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repl", required=True, help="the p2pd-repl binary")
    ap.add_argument("--case", action="append", choices=CASES)
    ap.add_argument("--flood-secs", type=int, default=10)
    ap.add_argument("--flooders", type=int, default=1, help="sender processes for the floods")
    ap.add_argument("--starts", type=int, default=1000)
    ap.add_argument("--datagrams", type=int, default=1_000_000)
    ap.add_argument("--conns", type=int, default=10_000)
    args = ap.parse_args()
    raise_fd_limit(4 * args.conns + 1024)
    failures = 0
    for case in args.case or CASES:
        try:
            if case.startswith("tasks-"):
                lines = [case_tasks(args.repl, int(case.split("-")[1]), args)]
            elif case == "udp-flood":
                lines = [case_udp_flood(args.repl, args)]
            elif case == "interface-starts":
                lines = [case_interface_starts(args.repl, args)]
            elif case == "stun-fuzz":
                lines = [case_stun_fuzz(args.repl, args)]
            else:
                lines = [case_tcp_hostile(args.repl, args, None),
                         case_tcp_hostile(args.repl, args, args.conns)]
        except Exception as e:  # a broken case is reported, the others still run
            failures += 1
            lines = [f"{case}: FAILED to run: {e}"]
        for line in lines:
            print(line, flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
