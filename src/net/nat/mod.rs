//! NAT classification (P2PD types and RFC 4787 behaviour).
