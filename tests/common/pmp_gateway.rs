//! A NAT-PMP (RFC 6886) and PCP (RFC 6887) gateway on a loopback address of its own
//! (127.66.x.y, port 5351), for port-mapping tests that need no root and no namespace.
//! It grants every MAP request for at most `max_lifetime` seconds and logs each request
//! with the time it came, so a test can see creations, renewals and deletions. The
//! packets are built here from the RFCs' layouts, not with the crate's codecs, so a bug
//! there cannot hide on both sides.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The external address the gateway claims (a documentation range).
pub const EXTERNAL_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 77);
const PORT: u16 = 5351;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// NAT-PMP's external-address request.
    Address,
    /// PCP ANNOUNCE.
    Announce,
    Map,
    Renew,
    Delete,
}

#[derive(Debug, Clone, Copy)]
pub struct Request {
    pub what: What,
    /// "pmp" or "pcp".
    pub via: &'static str,
    /// IANA protocol number: 6 TCP, 17 UDP (0 for Address and Announce).
    pub proto: u8,
    pub internal_port: u16,
    /// What the client asked for.
    pub lifetime: u32,
    pub at: Instant,
}

/// Which protocols answer, and the longest lifetime granted.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub pmp: bool,
    pub pcp: bool,
    pub max_lifetime: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            pmp: true,
            pcp: true,
            max_lifetime: 3600,
        }
    }
}

/// The gateway; stopped on drop.
pub struct PmpGateway {
    pub ip: Ipv4Addr,
    log: Arc<Mutex<Vec<Request>>>,
    live: Arc<Mutex<HashMap<(u8, u16), u16>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

static NEXT: AtomicU32 = AtomicU32::new(1);

impl PmpGateway {
    pub fn start(opts: Options) -> PmpGateway {
        let (ip, socket) = bind_free();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("read timeout");
        let log: Arc<Mutex<Vec<Request>>> = Arc::default();
        let live: Arc<Mutex<HashMap<(u8, u16), u16>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let state = State {
            opts,
            log: log.clone(),
            live: live.clone(),
            started: Instant::now(),
        };
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1100];
            while !stopping.load(Ordering::Relaxed) {
                if let Ok((n, peer)) = socket.recv_from(&mut buf)
                    && let Some(reply) = state.answer(&buf[..n], peer)
                {
                    let _ = socket.send_to(&reply, peer);
                }
            }
        });
        PmpGateway {
            ip,
            log,
            live,
            stop,
            thread: Some(thread),
        }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    pub fn count(&self, what: What) -> usize {
        self.requests().iter().filter(|r| r.what == what).count()
    }

    /// Mappings granted and not deleted.
    pub fn live(&self) -> usize {
        self.live.lock().unwrap().len()
    }

    /// Waits until `n` requests of `what` came, at most `limit`; the requests of that
    /// kind so far.
    pub fn wait_for(&self, what: What, n: usize, limit: Duration) -> Vec<Request> {
        let started = Instant::now();
        loop {
            let got: Vec<Request> = self
                .requests()
                .into_iter()
                .filter(|r| r.what == what)
                .collect();
            if got.len() >= n || started.elapsed() > limit {
                return got;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for PmpGateway {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A free 127.66.x.y:5351: unique per process and call, so tests and test binaries
/// running at once do not share a gateway.
fn bind_free() -> (Ipv4Addr, UdpSocket) {
    let base = std::process::id();
    for _ in 0..200 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let ip = Ipv4Addr::new(127, 66, (base % 250 + 1) as u8, (n % 250 + 1) as u8);
        if let Ok(s) = UdpSocket::bind((ip, PORT)) {
            return (ip, s);
        }
    }
    panic!("no free 127.66.x.y:{PORT} for the scripted gateway");
}

struct State {
    opts: Options,
    log: Arc<Mutex<Vec<Request>>>,
    /// (protocol, internal port) -> external port.
    live: Arc<Mutex<HashMap<(u8, u16), u16>>>,
    started: Instant,
}

impl State {
    fn epoch(&self) -> [u8; 4] {
        (self.started.elapsed().as_secs() as u32).to_be_bytes()
    }

    fn record(&self, what: What, via: &'static str, proto: u8, port: u16, lifetime: u32) {
        self.log.lock().unwrap().push(Request {
            what,
            via,
            proto,
            internal_port: port,
            lifetime,
            at: Instant::now(),
        });
    }

    /// Grants, renews or (lifetime 0) deletes; the external port and lifetime granted.
    fn map(&self, via: &'static str, proto: u8, port: u16, ext: u16, life: u32) -> (u16, u32) {
        let mut live = self.live.lock().unwrap();
        if life == 0 {
            let removed = live.remove(&(proto, port));
            drop(live);
            self.record(What::Delete, via, proto, port, 0);
            return (removed.unwrap_or(0), 0);
        }
        let what = if live.contains_key(&(proto, port)) {
            What::Renew
        } else {
            What::Map
        };
        let ext = *live
            .entry((proto, port))
            .or_insert(if ext == 0 { port } else { ext });
        drop(live);
        self.record(what, via, proto, port, life);
        (ext, life.min(self.opts.max_lifetime))
    }

    fn answer(&self, data: &[u8], peer: SocketAddr) -> Option<Vec<u8>> {
        match *data.first()? {
            0 if self.opts.pmp => self.pmp(data),
            2 if self.opts.pcp => self.pcp(data, peer),
            // RFC 6887 §9: a NAT-PMP-only server says "unsupported version" to PCP.
            2 if self.opts.pmp => {
                let mut r = vec![0, 128 + (data.get(1)? & 0x7f), 0, 1];
                r.extend_from_slice(&self.epoch());
                Some(r)
            }
            _ => None,
        }
    }

    fn pmp(&self, data: &[u8]) -> Option<Vec<u8>> {
        let op = *data.get(1)?;
        let mut r = vec![0, 128 + op, 0, 0];
        r.extend_from_slice(&self.epoch());
        match op {
            0 => {
                self.record(What::Address, "pmp", 0, 0, 0);
                r.extend_from_slice(&EXTERNAL_IP.octets());
            }
            1 | 2 if data.len() >= 12 => {
                let proto = if op == 1 { 17 } else { 6 };
                let port = u16::from_be_bytes([data[4], data[5]]);
                let ext = u16::from_be_bytes([data[6], data[7]]);
                let life = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
                let (ext, life) = self.map("pmp", proto, port, ext, life);
                r.extend_from_slice(&port.to_be_bytes());
                r.extend_from_slice(&ext.to_be_bytes());
                r.extend_from_slice(&life.to_be_bytes());
            }
            _ => return None,
        }
        Some(r)
    }

    fn pcp(&self, data: &[u8], peer: SocketAddr) -> Option<Vec<u8>> {
        if data.len() < 24 {
            return None;
        }
        let op = data[1] & 0x7f;
        let asked = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
        // §8.1: the client's address in the header must be where the request came from.
        let client = IpAddr::from(<[u8; 16]>::try_from(&data[8..24]).ok()?).to_canonical();
        let result = if client == peer.ip() { 0 } else { 12 };
        let header = |result: u8, life: u32| {
            let mut h = vec![2, 0x80 | op, 0, result];
            h.extend_from_slice(&life.to_be_bytes());
            h.extend_from_slice(&self.epoch());
            h.extend_from_slice(&[0; 12]);
            h
        };
        match op {
            0 => {
                self.record(What::Announce, "pcp", 0, 0, 0);
                Some(header(result, 0))
            }
            1 if data.len() >= 60 => {
                let proto = data[36];
                let port = u16::from_be_bytes([data[40], data[41]]);
                let ext = u16::from_be_bytes([data[42], data[43]]);
                let (ext, life) = if result == 0 {
                    self.map("pcp", proto, port, ext, asked)
                } else {
                    (0, 0)
                };
                let mut r = header(result, life);
                r.extend_from_slice(&data[24..36]); // the nonce
                r.extend_from_slice(&[proto, 0, 0, 0]);
                r.extend_from_slice(&port.to_be_bytes());
                r.extend_from_slice(&ext.to_be_bytes());
                r.extend_from_slice(&EXTERNAL_IP.to_ipv6_mapped().octets());
                Some(r)
            }
            _ => None,
        }
    }
}
