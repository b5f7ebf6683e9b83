//! Fuzz targets for the STUN codec and server (see `crate::fuzz` for how long they run and
//! how to repeat a failure). Seeds are real requests of every kind and the server's own
//! replies to them, so mutations start from messages that reach deep into the decoder.

use super::framing::{MAX_REQUEST_LEN, Prefix, check_prefix};
use super::*;
use crate::fuzz;
use std::net::SocketAddr;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn config() -> ServerConfig {
    ServerConfig::new(addr("203.0.113.1:3478"), Some(addr("203.0.113.2:3479")))
}

/// Requests of every shape the client sends, plus the server's replies to each.
fn seeds() -> Vec<Vec<u8>> {
    let mut requests = Vec::new();
    for classic in [false, true] {
        for change in [
            ChangeRequest::NONE,
            ChangeRequest::PORT,
            ChangeRequest::BOTH,
        ] {
            let mut opts = RequestOptions::change(change);
            opts.classic = classic;
            requests.push(opts.to_repr().unwrap().to_bytes().unwrap());
        }
    }
    let mut padded = Repr::binding_request(TransactionId::random().unwrap());
    padded.padding = Some(64);
    padded.response_port = Some(4000);
    padded.software = Some("fuzz".into());
    padded.fingerprint = true;
    requests.push(padded.to_bytes().unwrap());
    let mut replies = Vec::new();
    for r in &requests {
        for from in ["198.51.100.5:40000", "[2001:db8::5]:40000"] {
            for transport in [Transport::Udp, Transport::Tcp] {
                let local = addr("203.0.113.1:3478");
                if let Some(reply) = respond(r, addr(from), local, &config(), transport) {
                    replies.push(reply.bytes);
                }
            }
        }
    }
    requests.extend(replies);
    requests
}

#[test]
fn fuzz_stun_decoder_round_trips_what_it_accepts() {
    fuzz::run("stun decoder", &seeds(), |input| {
        // The framing decision agrees with the header it reads.
        if let Prefix::Message { len } = check_prefix(input)
            && (message_len(input) != Some(len) || len > MAX_REQUEST_LEN)
        {
            return Err(format!("check_prefix said {len} bytes"));
        }
        let Ok(packet) = Packet::new_checked(input) else {
            return Ok(());
        };
        packet.attributes().for_each(drop);
        let Ok(repr) = Repr::parse(&packet) else {
            return Ok(());
        };
        // What parsed emits again, and reads back as the same message.
        let bytes = repr
            .to_bytes()
            .map_err(|e| format!("parsed but cannot emit: {e}"))?;
        let again = Packet::new_checked(&bytes[..])
            .and_then(|p| Repr::parse(&p))
            .map_err(|e| format!("emitted bytes do not parse: {e}"))?;
        // MESSAGE-INTEGRITY is read but never emitted (no credentials here).
        let want = Repr {
            message_integrity: false,
            ..repr
        };
        if again != want {
            return Err(format!("round trip changed {want:?} into {again:?}"));
        }
        Ok(())
    });
}

#[test]
fn fuzz_stun_server_answers_only_with_valid_stun() {
    let cfg = config();
    let locals = cfg.local_addrs();
    let froms = [addr("198.51.100.5:40000"), addr("[2001:db8::5]:1")];
    let mut n = 0usize;
    fuzz::run("stun server", &seeds(), |input| {
        n += 1;
        let local = locals[n % locals.len()];
        let transport = if n.is_multiple_of(3) {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        let Some(reply) = respond(input, froms[n % 2], local, &cfg, transport) else {
            return Ok(());
        };
        if !locals.contains(&reply.from) {
            return Err(format!("reply from {}, not one of ours", reply.from));
        }
        let parsed = Packet::new_checked(&reply.bytes[..])
            .and_then(|p| Repr::parse(&p))
            .map_err(|e| format!("reply does not parse: {e}"))?;
        if parsed.class == Class::Request || reply.bytes.len() > MAX_REQUEST_LEN {
            return Err(format!("odd reply {parsed:?}"));
        }
        Ok(())
    });
}
