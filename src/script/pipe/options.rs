//! pipe_open's options map, the last argument when given: `pipe_open(proto, dest, route,
//! #{map: true})` or after the callbacks. A map can never be a callback, so a trailing
//! one is read as options without new positional arities for each option.

use super::super::error::error;
use super::super::portmap_pipe::MapRequest;
use super::super::registry::type_name;
use rhai::{Dynamic, EvalAltResult, Map};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// What pipe_open's options map asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    /// Map a server's port on the gateway once it is open.
    pub map: Option<MapRequest>,
}

impl OpenOptions {
    pub fn parse(value: &Dynamic) -> Res<OpenOptions> {
        let Some(map) = value.read_lock::<Map>() else {
            return Err(error(
                "type",
                format!(
                    "pipe_open's options must be a map like #{{map: true}}, got {}",
                    type_name(value)
                ),
            ));
        };
        let mut opts = OpenOptions::default();
        for (key, value) in map.iter() {
            match key.as_str() {
                "map" => opts.map = MapRequest::option(value)?,
                _ => {
                    return Err(error(
                        "value",
                        format!("unknown pipe_open option '{key}'; known: map"),
                    ));
                }
            }
        }
        Ok(opts)
    }
}

/// Splits a trailing options map off the callback arguments: `(msg_cb, up_cb)` as given,
/// with the last one taken as options when it is a map.
pub fn trailing(msg_cb: Dynamic, up_cb: Option<Dynamic>) -> Res<(Dynamic, Dynamic, OpenOptions)> {
    match up_cb {
        Some(up) if up.is_map() => Ok((msg_cb, Dynamic::UNIT, OpenOptions::parse(&up)?)),
        Some(up) => Ok((msg_cb, up, OpenOptions::default())),
        None if msg_cb.is_map() => Ok((Dynamic::UNIT, Dynamic::UNIT, OpenOptions::parse(&msg_cb)?)),
        None => Ok((msg_cb, Dynamic::UNIT, OpenOptions::default())),
    }
}
