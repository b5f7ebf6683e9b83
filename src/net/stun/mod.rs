//! STUN (RFC 5389/8489, RFC 3489 "classic", RFC 5780 NAT behaviour discovery).
//!
//! Layout, bottom up:
//! - `header`, `attribute`, `packet`, `repr`, `fingerprint`: the sans-IO codec. `Packet` is a
//!   checked view over bytes, `Repr` a plain value with `parse`/`emit`/`buffer_len`.
//! - `transaction`: one client request as a sans-IO state machine (RFC 5389 §7.2.1
//!   retransmissions, txid and source checks), fed time and datagrams.
//! - `client`: the thin tokio driver: `bindings` (many probes on one UDP socket), `binding`,
//!   `binding_tcp`, and `lookup` (external address from one server).
//! - `respond`: the pure server logic, RFC 5780 §4/§7 and RFC 3489 §8 (which socket answers
//!   and with what). `server`: the tokio server on 2 IPs x 2 ports; `tcp_server` its TCP
//!   side, `framing` (what the first bytes of a stream say) and `connections` (the
//!   connection cap) the pure parts of that.

mod attribute;
pub mod client;
mod connections;
mod error;
mod fingerprint;
mod framing;
#[cfg(test)]
mod fuzz_tests;
mod header;
mod packet;
mod repr;
mod respond;
#[cfg(test)]
mod rfc5769_tests;
pub mod server;
mod tcp_server;
mod transaction;

pub use attribute::{AttrType, Attribute, ChangeRequest, ErrorCode, u16_list};
pub use client::Error as ClientError;
pub use client::{BindingResponse, Lookup, binding, binding_tcp, binding_tcp_stream, bindings};
pub use error::Error;
pub use fingerprint::{FINGERPRINT_XOR, crc32};
pub use framing::{MAX_REQUEST_LEN, NotStun, Prefix, check_prefix};
pub use header::{Class, MAGIC_COOKIE, Method, TransactionId, message_type, split_message_type};
pub use packet::{Attributes, HEADER_LEN, Packet, message_len};
pub use repr::Repr;
pub use respond::{
    DEFAULT_TCP_MAX_CONNECTIONS, DEFAULT_TCP_TIMEOUT, Reply, ServerConfig, Transport, respond,
};
pub use server::{ServerSockets, StunServer, run_until};
pub use transaction::{
    Accept, DEFAULT_LAST_WAIT_FACTOR, DEFAULT_MAX_TRANSMITS, DEFAULT_RTO, RequestOptions, Response,
    TimedOut, Timing, Transaction, Transmit,
};
