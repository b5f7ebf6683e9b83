//! REPL front end.
