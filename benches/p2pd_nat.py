#!/usr/bin/env python3
"""P2PD 3.1.9's load_nat() on the NAT lab, for benches/nat.sh (the comparison peer).

Why it exists: P2PD has no configuration surface for its STUN servers and rejects
"private" addresses, so measuring it offline takes some patching, kept here in one place
(p2pd-baseline.md §4.3/§4.4, inventory §10):
  - STUN_MAP_SERVERS (Interface.start) and STUN_CHANGE_SERVERS (load_nat) are mutated in
    place to point at the lab's server (203.0.113.1:3478, alternate 203.0.113.2:3479);
  - the lab's "internet" is 203.0.113.0/24 and 198.51.100.0/24, which Python's ipaddress
    calls private (documentation ranges), and P2PD drops STUN replies and routes with
    private addresses: is_private is patched to say False for those two ranges only;
  - Interface.get_netifaces is set up front so init_p2pd() (which sends a UDP packet to
    8.8.8.8 as a self-test) never runs.

Usage (inside the lab's client namespace):
    p2pd_nat.py RUNS [IFNAME]
Prints one JSON object per run: {"ms", "type", "delta", "packets", "error"}; packets are
the interface's tx_packets delta over the load_nat() call.
"""
import asyncio
import ipaddress
import json
import sys
import time

LAB_NETS = [ipaddress.ip_network("203.0.113.0/24"), ipaddress.ip_network("198.51.100.0/24")]
_is_private = ipaddress.IPv4Address.is_private


def _lab_public(self):
    if any(self in n for n in LAB_NETS):
        return False
    return _is_private.fget(self)


ipaddress.IPv4Address.is_private = property(_lab_public)

import netifaces  # noqa: E402  (after the patch, before p2pd reads anything)
from p2pd import *  # noqa: E402,F401,F403
import p2pd.settings as S  # noqa: E402
from p2pd.interface import Interface  # noqa: E402

PRIMARY = {"ip": "203.0.113.1", "port": 3478}
SECONDARY = {"ip": "203.0.113.2", "port": 3479}


def lab_servers():
    # Interface.start wants two agreeing map servers (min_agree=2): the same server on
    # two addresses. load_nat's delta test wants 12 change servers: 12 copies.
    maps = [
        {"mode": 2, "host": None, "primary": p, "secondary": {"ip": None, "port": None}}
        for p in (PRIMARY, {"ip": "203.0.113.2", "port": 3478})
    ]
    change = [{"mode": 1, "primary": dict(PRIMARY), "secondary": dict(SECONDARY)} for _ in range(12)]
    for table, entries in ((S.STUN_MAP_SERVERS, maps), (S.STUN_CHANGE_SERVERS, change)):
        table[S.UDP][S.IP4][:] = entries
        table[S.UDP][S.IP6][:] = []


def tx_packets(ifname):
    with open(f"/sys/class/net/{ifname}/statistics/tx_packets") as f:
        return int(f.read())


async def main(runs, ifname):
    lab_servers()
    Interface.get_netifaces = staticmethod(lambda: netifaces)
    iface = await Interface(ifname).start()
    for _ in range(runs):
        before = tx_packets(ifname)
        started = time.perf_counter()
        out = {"type": None, "delta": None, "error": None}
        try:
            nat = await iface.load_nat()
            out["type"], out["delta"] = nat["type"], nat["delta"]
        except Exception as e:  # P2PD raises ErrorCantLoadNATInfo and bare asserts
            out["error"] = repr(e)
        out["ms"] = (time.perf_counter() - started) * 1000
        out["packets"] = tx_packets(ifname) - before
        print(json.dumps(out), flush=True)
        # Let late replies and conntrack settle between runs, as between our runs.
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "eth0"))
