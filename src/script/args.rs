//! Argument conversions shared by every binding.
//!
//! Rhai never turns an INT into a FLOAT for a native function, so `sleep(1)` and
//! `sleep(0.5)` would need two overloads each; bindings instead take `Dynamic` and
//! convert here, with an error that names the argument.

use super::error::{error, type_name};
use rhai::{Dynamic, EvalAltResult};
use std::time::Duration;

/// Seconds as a duration: int or float, finite, not negative.
pub fn seconds(value: &Dynamic, what: &str) -> Result<Duration, Box<EvalAltResult>> {
    let secs = if let Ok(i) = value.as_int() {
        i as f64
    } else if let Ok(f) = value.as_float() {
        f
    } else {
        return Err(error(
            "type",
            format!(
                "{what} must be a number of seconds, got {}",
                type_name(value)
            ),
        ));
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(error(
            "value",
            format!("{what} must be a finite number of seconds >= 0, got {secs}"),
        ));
    }
    // Anything beyond a century is a typo; Duration would overflow at u64 seconds.
    Ok(Duration::from_secs_f64(secs.min(3.0e9)))
}

/// What a wrong argument is, for an error message. A bare name that is no variable but
/// names a function reads as that function (see `engine::install_names`), which usually
/// means the variable was never made: say so instead of a bare "Fn".
pub fn described(value: &Dynamic) -> String {
    match value.read_lock::<rhai::FnPtr>() {
        Some(f) => format!(
            "the function {}() (is a variable of that name missing?)",
            f.fn_name()
        ),
        None => super::registry::type_name(value).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_and_floats_are_seconds() {
        assert_eq!(
            seconds(&Dynamic::from(2_i64), "t").unwrap(),
            Duration::from_secs(2)
        );
        assert_eq!(
            seconds(&Dynamic::from(0.25_f64), "t").unwrap(),
            Duration::from_millis(250)
        );
        assert!(seconds(&Dynamic::from(-1_i64), "t").is_err());
        assert!(seconds(&Dynamic::from("x"), "timeout").is_err());
    }

    #[test]
    fn a_function_in_place_of_a_value_is_named() {
        let f = Dynamic::from(rhai::FnPtr::new("route").unwrap());
        assert_eq!(
            described(&f),
            "the function route() (is a variable of that name missing?)"
        );
        assert_eq!(described(&Dynamic::from(1_i64)), "i64");
    }
}
