//! Pipes: TCP/UDP clients and servers with subscription queues.
