//! The methods of a script pipe: subscribe/recv (pull), send, accept, close, callbacks and
//! links. Every wait goes through `bridge::wait`, so Ctrl-C cancels it and callbacks keep
//! running meanwhile.
//!
//! Kept from P2PD (inventory §5.2): `recv(sub, timeout, full)` with a 2 s default that
//! returns `()` on timeout, `[[ip, port], bytes]` with `full`, subscriptions as
//! `[regex, [ip, port]]` pairs. Fixed: `recv(0)` polls instead of waiting 2 s; a missing
//! subscription and a send on a closed pipe raise errors instead of returning None or 0.

use super::super::address::tup;
use super::super::args::seconds;
use super::super::bridge;
use super::super::bytes::{Bytes, payload};
use super::super::error::{error, show};
use super::super::registry::{Help, Registrar};
use super::super::status;
use super::ScriptPipe;
use super::args::{self, SubKey, pipe_error};
use super::callbacks::{self, Kind};
use rhai::{Array, Dynamic, EvalAltResult, FnPtr, NativeCallContext};
use std::time::Duration;

type Res<T> = Result<T, Box<EvalAltResult>>;

/// P2PD's `recv_timeout`.
const RECV_TIMEOUT: Duration = Duration::from_secs(2);
/// "No limit" for `await server` and `accept()`: Ctrl-C is the way out.
pub const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

fn subscribe(p: &ScriptPipe, key: SubKey) -> Res<Array> {
    p.pipe
        .subscribe(key.0.as_deref(), key.1)
        .map_err(pipe_error)?;
    Ok(args::sub_value(&key))
}

fn unsubscribe(p: &ScriptPipe, key: SubKey) -> bool {
    p.pipe
        .find_subscription(key.0.as_deref(), key.1)
        .is_some_and(|id| p.pipe.unsubscribe(id))
}

fn recv(
    ctx: &NativeCallContext,
    p: &ScriptPipe,
    sub: &Dynamic,
    timeout: &Dynamic,
    full: bool,
) -> Res<Dynamic> {
    let timeout = if timeout.is_unit() {
        RECV_TIMEOUT
    } else {
        seconds(timeout, "recv timeout")?
    };
    let id = subscription(p, sub)?;
    // What is there already is taken at once: `wait` polls before it suspends. The pipe's
    // futures are boxed in the async blocks here for the reason given in `open`.
    let got = status::wait(ctx, move || status::up_to("recv", timeout), async {
        Box::pin(p.pipe.recv(id, timeout)).await.map_err(pipe_error)
    })?;
    Ok(match got {
        None => Dynamic::UNIT,
        Some((peer, data)) if full => {
            Dynamic::from(vec![Dynamic::from(tup(peer)), Dynamic::from(Bytes(data))])
        }
        Some((_, data)) => Dynamic::from(Bytes(data)),
    })
}

/// The subscription `sub` names on `p`; out of line, so the frame that waits in `recv`
/// does not hold what finding it takes.
#[inline(never)]
fn subscription(p: &ScriptPipe, sub: &Dynamic) -> Res<crate::net::pipe::SubId> {
    let key = args::sub_key(sub)?;
    p.pipe
        .find_subscription(key.0.as_deref(), key.1)
        .ok_or_else(|| {
            error(
                "no_subscription",
                format!(
                    "pipe {} has no subscription {}: call pipe.subscribe(...) first",
                    p.pipe,
                    show(&Dynamic::from(args::sub_value(&key)))
                ),
            )
        })
}

fn send(ctx: &NativeCallContext, p: &ScriptPipe, data: &Dynamic, to: Option<&Dynamic>) -> Res<()> {
    let to = to.map(args::peer).transpose()?;
    // Bytes are sent from where they are (an argument is never a shared value, but a
    // shared one is copied out anyway); other payloads are converted first.
    let converted;
    let bytes = if data.is_shared() {
        None
    } else {
        data.read_lock::<Bytes>()
    };
    let data = match &bytes {
        Some(b) => b.0.as_slice(),
        None => {
            converted = payload(data, "send data")?;
            converted.as_slice()
        }
    };
    let label = || "send: waiting for room in the socket".to_string();
    status::wait(ctx, label, async {
        match to {
            Some(peer) => Box::pin(p.pipe.send_to(data, peer)).await,
            None => Box::pin(p.pipe.send(data)).await,
        }
        .map_err(pipe_error)
    })
}

/// The next client of a TCP server, or `()` on timeout or once the server closed.
pub fn accept_for(ctx: &NativeCallContext, p: &ScriptPipe, timeout: Duration) -> Res<Dynamic> {
    let pipe = p.pipe.clone();
    let label = move || status::up_to("accept", timeout);
    let client = status::wait(ctx, label, async move {
        Box::pin(pipe.accept(timeout)).await.map_err(pipe_error)
    })?;
    Ok(client.map_or(Dynamic::UNIT, |c| Dynamic::from(p.child(c))))
}

fn close(ctx: &NativeCallContext, p: &ScriptPipe) -> Res<()> {
    let pipe = p.pipe.clone();
    bridge::wait(ctx, async move {
        Box::pin(pipe.close()).await;
        Ok::<_, Box<EvalAltResult>>(())
    })
}

const SUBSCRIBE: Help = Help::method(
    "pipes",
    &[
        "pipe.subscribe()",
        "pipe.subscribe(regex)",
        "pipe.subscribe(regex, [ip, port])",
        "pipe.subscribe([regex, [ip, port]])",
    ],
    "Queue matching messages (regex anywhere, () = all; port 0 = any port of that IP); returns the sub for recv.",
    "let s = echo_server(UDP, \"127.0.0.1\", 0); let p = pipe_open(UDP, s.local); let sub = p.subscribe(\"^m\"); p.send(\"me\"); p.recv(sub, 2)",
);
const UNSUBSCRIBE: Help = Help::method(
    "pipes",
    &[
        "pipe.unsubscribe()",
        "pipe.unsubscribe(sub)",
        "pipe.unsubscribe(regex, [ip, port])",
    ],
    "Drop a subscription and its queued messages; false if it did not exist.",
    "let s = echo_server(UDP, \"127.0.0.1\", 0); let p = pipe_open(UDP, s.local); p.unsubscribe()",
);
const RECV: Help = Help::method(
    "pipes",
    &[
        "pipe.recv()",
        "pipe.recv(timeout)",
        "pipe.recv(sub)",
        "pipe.recv(sub, timeout)",
        "pipe.recv(sub, timeout, full)",
    ],
    "Next queued message as bytes ([[ip, port], bytes] with full), () after timeout seconds (default 2, 0 polls).",
    "let s = echo_server(TCP, \"127.0.0.1\", 0); let p = pipe_open(TCP, s.local); p.send(\"hi\"); p.recv((), 2, true)",
);
const SEND: Help = Help::method(
    "pipes",
    &["pipe.send(data)", "pipe.send(data, [ip, port])"],
    "Send a string, blob or bytes to the pipe's destination or to [ip, port]; raises if the pipe is closed or broken. On TCP, sends in quick succession are combined into one write (a send after a recv goes out at once); close() writes them all before closing.",
    "let s = echo_server(UDP, \"127.0.0.1\", 0); let p = pipe_open(UDP, (), \"127.0.0.1\"); p.subscribe(); p.send(b\"x\", s.local); p.recv(2)",
);
const ACCEPT: Help = Help::method(
    "pipes",
    &["server.accept()", "server.accept(timeout)", "await server"],
    "A TCP server's next client pipe, in arrival order; () after timeout seconds (no limit without one).",
    "let s = pipe_open(TCP, (), \"127.0.0.1\"); let c = pipe_open(TCP, s.local); s.accept(2)",
);
const CLOSE: Help = Help::method(
    "pipes",
    &["pipe.close()"],
    "Close the pipe (a server also closes its clients); safe to call twice, the port is free when it returns.",
    "let s = echo_server(TCP, \"127.0.0.1\", 0); s.close(); s.is_running",
);
const ADD_MSG_CB: Help = Help::method(
    "pipes",
    &["pipe.add_msg_cb(|msg, client, pipe| ...)"],
    "Call a closure for each message (client = [ip, port]; pipe.send answers it); runs on the script thread, also at the prompt.",
    "let s = pipe_open(UDP, (), \"127.0.0.1\"); s.add_msg_cb(|m, c, p| p.send(m, c)); let p = pipe_open(UDP, s.local); p.send(\"hi\"); p.recv(2)",
);
const ADD_END_CB: Help = Help::method(
    "pipes",
    &["pipe.add_end_cb(|msg, client, pipe| ...)"],
    "Call a closure when the pipe (or a TCP server's client) ends; msg is ().",
    "let s = echo_server(TCP, \"127.0.0.1\", 0); s.add_end_cb(|m, c, p| print(`ended: ${p}`)); s.close(); sleep(0.1)",
);
const ADD_UP_CB: Help = Help::method(
    "pipes",
    &["pipe.add_up_cb(|msg, client, pipe| ...)"],
    "Call a closure for each new TCP connection a server accepts; pipe is the new client.",
    "let s = pipe_open(TCP, (), \"127.0.0.1\"); s.add_up_cb(|m, c, p| print(`up: ${p}`)); pipe_open(TCP, s.local); sleep(0.1)",
);
const DEL_MSG_CB: Help = Help::method(
    "pipes",
    &["pipe.del_msg_cb(f)"],
    "Remove a message callback added with add_msg_cb (its queued calls are dropped too).",
    "let s = echo_server(UDP, \"127.0.0.1\", 0); let f = |m, c, p| print(m); s.add_msg_cb(f); s.del_msg_cb(f)",
);
const DEL_END_CB: Help = Help::method(
    "pipes",
    &["pipe.del_end_cb(f)"],
    "Remove an end callback added with add_end_cb.",
    "let s = echo_server(TCP, \"127.0.0.1\", 0); let f = |m, c, p| print(c); s.add_end_cb(f); s.del_end_cb(f)",
);
const DEL_UP_CB: Help = Help::method(
    "pipes",
    &["pipe.del_up_cb(f)"],
    "Remove an up callback added with add_up_cb.",
    "let s = echo_server(TCP, \"127.0.0.1\", 0); let f = |m, c, p| print(p); s.add_up_cb(f); s.del_up_cb(f)",
);
const ADD_PIPE: Help = Help::method(
    "pipes",
    &["pipe.add_pipe(other)"],
    "Relay everything that arrives on pipe into other (one way; link both ways for a bridge).",
    "let e = echo_server(UDP, \"127.0.0.1\", 0); let a = pipe_open(UDP, (), \"127.0.0.1\"); let b = pipe_open(UDP, a.local); a.add_pipe(b); b.send(\"x\", e.local); b.recv(2)",
);
const DEL_PIPE: Help = Help::method(
    "pipes",
    &["pipe.del_pipe(other)"],
    "Stop relaying into other.",
    "let a = echo_server(UDP, \"127.0.0.1\", 0); let b = pipe_open(UDP, a.local); a.add_pipe(b); a.del_pipe(b)",
);

pub fn register(reg: &mut Registrar) {
    reg.func("subscribe", &SUBSCRIBE, |p: &mut ScriptPipe| {
        subscribe(p, (None, None))
    })
    .func(
        "subscribe",
        &SUBSCRIBE,
        |p: &mut ScriptPipe, sub: Dynamic| subscribe(p, args::sub_key(&sub)?),
    )
    .func(
        "subscribe",
        &SUBSCRIBE,
        |p: &mut ScriptPipe, re: Dynamic, who: Dynamic| subscribe(p, args::sub_pair(&re, &who)?),
    )
    .func("unsubscribe", &UNSUBSCRIBE, |p: &mut ScriptPipe| {
        unsubscribe(p, (None, None))
    })
    .func(
        "unsubscribe",
        &UNSUBSCRIBE,
        |p: &mut ScriptPipe, sub: Dynamic| -> Res<bool> {
            Ok(unsubscribe(p, args::sub_key(&sub)?))
        },
    )
    .func(
        "unsubscribe",
        &UNSUBSCRIBE,
        |p: &mut ScriptPipe, re: Dynamic, who: Dynamic| -> Res<bool> {
            Ok(unsubscribe(p, args::sub_pair(&re, &who)?))
        },
    )
    .func(
        "recv",
        &RECV,
        |ctx: NativeCallContext, p: &mut ScriptPipe| {
            recv(&ctx, p, &Dynamic::UNIT, &Dynamic::UNIT, false)
        },
    )
    .func(
        "recv",
        &RECV,
        // One argument: a number is the timeout, anything else the subscription.
        |ctx: NativeCallContext, p: &mut ScriptPipe, a: Dynamic| {
            if a.is_int() || a.is_float() {
                recv(&ctx, p, &Dynamic::UNIT, &a, false)
            } else {
                recv(&ctx, p, &a, &Dynamic::UNIT, false)
            }
        },
    )
    .func(
        "recv",
        &RECV,
        |ctx: NativeCallContext, p: &mut ScriptPipe, sub: Dynamic, t: Dynamic| {
            recv(&ctx, p, &sub, &t, false)
        },
    )
    .func(
        "recv",
        &RECV,
        |ctx: NativeCallContext, p: &mut ScriptPipe, sub: Dynamic, t: Dynamic, full: bool| {
            recv(&ctx, p, &sub, &t, full)
        },
    )
    .func(
        "send",
        &SEND,
        |ctx: NativeCallContext, p: &mut ScriptPipe, data: Dynamic| send(&ctx, p, &data, None),
    )
    .func(
        "send",
        &SEND,
        |ctx: NativeCallContext, p: &mut ScriptPipe, data: Dynamic, to: Dynamic| {
            send(&ctx, p, &data, Some(&to))
        },
    )
    .func(
        "accept",
        &ACCEPT,
        |ctx: NativeCallContext, p: &mut ScriptPipe| accept_for(&ctx, p, FOREVER),
    )
    .func(
        "accept",
        &ACCEPT,
        |ctx: NativeCallContext, p: &mut ScriptPipe, t: Dynamic| {
            accept_for(&ctx, p, seconds(&t, "accept timeout")?)
        },
    )
    .func(
        "close",
        &CLOSE,
        |ctx: NativeCallContext, p: &mut ScriptPipe| close(&ctx, p),
    )
    .func(
        "add_pipe",
        &ADD_PIPE,
        |p: &mut ScriptPipe, o: ScriptPipe| p.pipe.add_pipe(&o.pipe),
    )
    .func(
        "del_pipe",
        &DEL_PIPE,
        |p: &mut ScriptPipe, o: ScriptPipe| p.pipe.del_pipe(&o.pipe),
    );
    register_callbacks(reg);
}

fn register_callbacks(reg: &mut Registrar) {
    let kinds = [
        (
            Kind::Msg,
            "add_msg_cb",
            &ADD_MSG_CB,
            "del_msg_cb",
            &DEL_MSG_CB,
        ),
        (
            Kind::End,
            "add_end_cb",
            &ADD_END_CB,
            "del_end_cb",
            &DEL_END_CB,
        ),
        (Kind::Up, "add_up_cb", &ADD_UP_CB, "del_up_cb", &DEL_UP_CB),
    ];
    for (kind, add, add_help, del, del_help) in kinds {
        reg.func(
            add,
            add_help,
            move |ctx: NativeCallContext, p: &mut ScriptPipe, f: FnPtr| {
                callbacks::add(&ctx, p, kind, f)
            },
        )
        .func(del, del_help, move |p: &mut ScriptPipe, f: FnPtr| {
            p.callbacks().remove(kind, &f)
        });
    }
}
