#!/usr/bin/env python3
"""A scripted port-mapping gateway for the NAT lab's router namespace.

It answers NAT-PMP (RFC 6886), PCP (RFC 6887: ANNOUNCE and MAP) and UPnP IGD (SSDP,
description, SOAP) in ways miniupnpd cannot be made to: real mappings despite the lab's
documentation-range WAN address (each grant installs an nftables DNAT rule, each
deletion removes it and its conntrack entries), multicast-only SSDP, SSDP answers from a
port other than 1900, a first descriptor that is not the IGD, chosen error results.
Every request is logged as one JSON line on stdout (flushed) for the tests to read.

  gateway.py [--pmp] [--pcp] [--upnp] [--igd 1|2] [--ssdp both|multicast|unicast]
             [--ssdp-port N] [--media-first] [--pmp-result N] [--pcp-result N]
             [--upnp-error N] [--lan 10.77.0.1] [--wan 203.0.113.100] [--wan-if wan0]
"""
import argparse, json, os, select, signal, socket, struct, subprocess, sys, time

P = argparse.ArgumentParser()
P.add_argument("--pmp", action="store_true")
P.add_argument("--pcp", action="store_true")
P.add_argument("--upnp", action="store_true")
P.add_argument("--igd", type=int, default=2)
P.add_argument("--ssdp", default="both")
P.add_argument("--ssdp-port", type=int, default=1900)
P.add_argument("--media-first", action="store_true")
P.add_argument("--pmp-result", type=int, default=0)
P.add_argument("--pcp-result", type=int, default=0)
P.add_argument("--upnp-error", type=int, default=0)
P.add_argument("--lan", default="10.77.0.1")
P.add_argument("--wan", default="203.0.113.100")
P.add_argument("--wan-if", default="wan0")
A = P.parse_args()
START = time.time()
HTTP_PORT = 5000
TABLE = "p2pdgw"
mappings = {}  # (proto, ext_port) -> dict(client, int_port, handle, expires)


def log(**ev):
    ev["t"] = round(time.time() - START, 3)
    print(json.dumps(ev), flush=True)


def nft(*args):
    return subprocess.run(["nft", *args], capture_output=True, text=True)


def setup_nft():
    nft("delete", "table", "ip", TABLE)
    text = f"""table ip {TABLE} {{
  chain prerouting {{ type nat hook prerouting priority dstnat - 5; policy accept; }}
}}
"""
    r = subprocess.run(["nft", "-f", "-"], input=text, capture_output=True, text=True)
    if r.returncode:
        sys.exit("nft: " + r.stderr)


def install(proto, ext, client, port):
    r = nft("--echo", "--handle", "add", "rule", "ip", TABLE, "prerouting", "iifname", A.wan_if,
            proto, "dport", str(ext), "dnat", "to", f"{client}:{port}")
    for line in r.stdout.splitlines():
        if "# handle " in line:
            return line.rsplit("# handle ", 1)[1].split()[0]
    return None


def remove(key):
    m = mappings.pop(key, None)
    if not m:
        return False
    if m["handle"]:
        nft("delete", "rule", "ip", TABLE, "prerouting", "handle", m["handle"])
    proto, ext = key
    subprocess.run(["conntrack", "-D", "-p", proto, "--orig-port-dst", str(ext)], capture_output=True)
    return True


def grant(proto, client, port, ext, lifetime, via):
    ext = ext or port
    key = (proto, ext)
    old = mappings.get(key)
    if old and (old["client"], old["port"]) != (client, port):
        ext = next(p for p in range(30000, 40000) if (proto, p) not in mappings)
        key = (proto, ext)
        old = None
    if old:
        old["expires"] = time.time() + lifetime
        log(ev="renew", via=via, proto=proto, ext=ext, client=client, port=port, lifetime=lifetime)
    else:
        handle = install(proto, ext, client, port)
        mappings[key] = dict(client=client, port=port, handle=handle,
                             expires=time.time() + (lifetime or 1e9))
        log(ev="map", via=via, proto=proto, ext=ext, client=client, port=port, lifetime=lifetime)
    return ext


def unmap(proto, ext, via, client=None, port=None):
    if ext is None:
        keys = [k for k, m in mappings.items() if k[0] == proto and m["client"] == client and m["port"] == port]
    else:
        keys = [(proto, ext)]
    for k in keys:
        if remove(k):
            log(ev="delete", via=via, proto=proto, ext=k[1])


def epoch():
    return int(time.time() - START)


def on_5351(sock, data, peer):
    client = peer[0]
    if data[:1] == b"\x00":
        if not A.pmp:
            return
        if len(data) < 2:
            return
        op = data[1]
        if op == 0:
            log(ev="pmp_address")
            sock.sendto(struct.pack("!BBHI4s", 0, 128, A.pmp_result, epoch(), socket.inet_aton(A.wan)), peer)
        elif op in (1, 2) and len(data) >= 12:
            _, _, _, iport, eport, life = struct.unpack("!BBHHHI", data[:12])
            proto = "udp" if op == 1 else "tcp"
            if A.pmp_result:
                sock.sendto(struct.pack("!BBHIHHI", 0, 128 + op, A.pmp_result, epoch(), iport, 0, 0), peer)
                return
            if life == 0:
                unmap(proto, None, "pmp", client, iport)
                ext = 0
            else:
                ext = grant(proto, client, iport, eport, life, "pmp")
            sock.sendto(struct.pack("!BBHIHHI", 0, 128 + op, 0, epoch(), iport, ext, life), peer)
    elif data[:1] == b"\x02":
        if not A.pcp:
            if A.pmp:  # a NAT-PMP-only server: unsupported version, NAT-PMP format
                sock.sendto(struct.pack("!BBHI", 0, 128 + (data[1] & 0x7F), 1, epoch()), peer)
            return
        if len(data) < 24:
            return
        op = data[1] & 0x7F
        life = struct.unpack("!I", data[4:8])[0]
        head = lambda result, lt: struct.pack("!BBBBII", 2, 0x80 | op, 0, result, lt, epoch()) + b"\0" * 12
        if op == 0:
            log(ev="pcp_announce")
            sock.sendto(head(A.pcp_result, 0), peer)
        elif op == 1 and len(data) >= 60:
            nonce = data[24:36]
            pnum = data[36]
            iport, eport = struct.unpack("!HH", data[40:44])
            proto = "udp" if pnum == 17 else "tcp"
            result, ext = A.pcp_result, 0
            if not result:
                if life == 0:
                    unmap(proto, None, "pcp", client, iport)
                    ext = eport
                else:
                    ext = grant(proto, client, iport, eport, life, "pcp")
            wan = b"\0" * 10 + b"\xff\xff" + socket.inet_aton(A.wan)
            sock.sendto(head(result, life) + nonce + bytes([pnum, 0, 0, 0]) + struct.pack("!HH", iport, ext) + wan, peer)
    elif A.pmp or A.pcp:
        pass


def ssdp_answer(target):
    answers = []
    base = f"http://{A.lan}:{HTTP_PORT}"
    if A.media_first:
        answers.append(("urn:schemas-upnp-org:device:MediaServer:1", f"{base}/media.xml"))
    answers.append((target, f"{base}/rootDesc.xml"))
    out = []
    for st, loc in answers:
        out.append((f"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: {target}\r\n"
                    f"USN: uuid:00000000-0000-0000-0000-00000000000{len(out)}::{st}\r\nEXT:\r\n"
                    f"SERVER: p2pd-lab/1 UPnP/1.1 gateway.py/1\r\nLOCATION: {loc}\r\n\r\n").encode())
    return out


def on_ssdp(reply_sock, data, peer, kind):
    text = data.decode("latin-1")
    if not text.startswith("M-SEARCH"):
        return
    st = ""
    for line in text.split("\r\n"):
        if line.lower().startswith("st:"):
            st = line[3:].strip()
    if "InternetGatewayDevice" not in st:
        return
    log(ev="ssdp", kind=kind, st=st)
    if (A.ssdp == "multicast" and kind != "multicast") or (A.ssdp == "unicast" and kind != "unicast"):
        return
    for answer in ssdp_answer(st):
        reply_sock.sendto(answer, peer)


def description():
    v = A.igd
    svc = f"urn:schemas-upnp-org:service:WANIPConnection:{v}"
    return f"""<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>0</minor></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:{v}</deviceType>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:{v}</deviceType>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:{v}</deviceType>
<serviceList><service><serviceType>{svc}</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList>
</device></deviceList></device></deviceList></device></root>""", svc


MEDIA = """<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceType>urn:schemas-upnp-org:device:MediaServer:1</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:ContentDirectory:1</serviceType><controlURL>/ctl/CD</controlURL></service></serviceList></device></root>"""


def arg(body, name):
    a = body.find(f"<{name}>")
    b = body.find(f"</{name}>")
    return body[a + len(name) + 2:b] if a >= 0 and b > a else ""


def soap_ok(action, svc, inner=""):
    return 200, (f'<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
                 f's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:{action}Response '
                 f'xmlns:u="{svc}">{inner}</u:{action}Response></s:Body></s:Envelope>\r\n')


def soap_fault(code, text):
    return 500, (f'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode>'
                 f'<faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0">'
                 f'<errorCode>{code}</errorCode><errorDescription>{text}</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>')


def on_http(conn, peer):
    conn.settimeout(2)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path = lines[0].split()[:2]
    length = 0
    action = ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
        if name.lower() == "soapaction":
            action = value.strip().strip('"').split("#")[-1]
    while len(body) < length:
        body += conn.recv(4096)
    text = body.decode("latin-1")
    desc, svc = description()
    if method == "GET" and path == "/rootDesc.xml":
        status, out = 200, desc
    elif method == "GET" and path == "/media.xml":
        status, out = 200, MEDIA
    elif method == "POST" and path == "/ctl/IPConn":
        log(ev="soap", action=action)
        if action == "GetExternalIPAddress":
            status, out = soap_ok(action, svc, f"<NewExternalIPAddress>{A.wan}</NewExternalIPAddress>")
        elif A.upnp_error and action in ("AddPortMapping", "AddAnyPortMapping"):
            status, out = soap_fault(A.upnp_error, "ScriptedError")
        elif action in ("AddPortMapping", "AddAnyPortMapping"):
            if action == "AddAnyPortMapping" and A.igd < 2:
                status, out = soap_fault(401, "Invalid Action")
            else:
                proto = arg(text, "NewProtocol").lower()
                ext = grant(proto, arg(text, "NewInternalClient"), int(arg(text, "NewInternalPort")),
                            int(arg(text, "NewExternalPort") or 0), int(arg(text, "NewLeaseDuration") or 0), "upnp")
                inner = f"<NewReservedPort>{ext}</NewReservedPort>" if action == "AddAnyPortMapping" else ""
                status, out = soap_ok(action, svc, inner)
        elif action == "DeletePortMapping":
            key = (arg(text, "NewProtocol").lower(), int(arg(text, "NewExternalPort") or 0))
            if key in mappings:
                remove(key)
                log(ev="delete", via="upnp", proto=key[0], ext=key[1])
                status, out = soap_ok(action, svc)
            else:
                status, out = soap_fault(714, "NoSuchEntryInArray")
        else:
            status, out = soap_fault(401, "Invalid Action")
    else:
        status, out = 404, "not found"
    raw = out.encode()
    conn.sendall(f"HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {len(raw)}\r\nConnection: close\r\n\r\n".encode() + raw)


def main():
    setup_nft()
    socks = {}
    if A.pmp or A.pcp:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((A.lan, 5351))
        socks[s] = "5351"
    http = None
    if A.upnp:
        uni = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        uni.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        uni.bind((A.lan, 1900))
        socks[uni] = "unicast"
        multi = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        multi.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        multi.bind(("239.255.255.250", 1900))
        mreq = socket.inet_aton("239.255.255.250") + socket.inet_aton(A.lan)
        multi.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        socks[multi] = "multicast"
        reply = uni
        if A.ssdp_port != 1900:
            reply = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            reply.bind((A.lan, A.ssdp_port))
        http = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        http.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        http.bind((A.lan, HTTP_PORT))
        http.listen(8)
    log(ev="ready", pid=os.getpid())
    while True:
        watched = list(socks) + ([http] if http else [])
        ready, _, _ = select.select(watched, [], [], 0.2)
        now = time.time()
        for key in [k for k, m in mappings.items() if m["expires"] < now]:
            remove(key)
            log(ev="expire", proto=key[0], ext=key[1])
        for s in ready:
            if s is http:
                conn, peer = http.accept()
                try:
                    on_http(conn, peer)
                except Exception as e:  # a broken request must not stop the gateway
                    log(ev="http_error", error=str(e))
                finally:
                    conn.close()
                continue
            data, peer = s.recvfrom(2048)
            if socks[s] == "5351":
                on_5351(s, data, peer)
            else:
                on_ssdp(reply, data, peer, socks[s])


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        main()
    finally:
        for key in list(mappings):
            remove(key)
        nft("delete", "table", "ip", TABLE)
