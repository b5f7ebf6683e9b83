//! Rhai bindings.
