//! Where the REPL keeps its history: `$XDG_STATE_HOME/p2pd-repl/history`, falling back
//! to `~/.local/state/p2pd-repl/history` (XDG base directory spec: history is state,
//! not configuration or cache). Script runs never read or write it.

use std::path::PathBuf;

/// The history file for the given environment values; `None` without a usable home.
pub fn history_path(xdg_state_home: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    let base = match xdg_state_home.filter(|s| s.starts_with('/')) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(home.filter(|h| !h.is_empty())?).join(".local/state"),
    };
    Some(base.join("p2pd-repl").join("history"))
}

/// The history file for this process's environment.
pub fn default_history_path() -> Option<PathBuf> {
    history_path(
        std::env::var("XDG_STATE_HOME").ok().as_deref(),
        std::env::var("HOME").ok().as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdg_wins_then_home() {
        assert_eq!(
            history_path(Some("/s"), Some("/h")),
            Some(PathBuf::from("/s/p2pd-repl/history"))
        );
        // The spec says relative paths are invalid and must be ignored.
        assert_eq!(
            history_path(Some("rel"), Some("/h")),
            Some(PathBuf::from("/h/.local/state/p2pd-repl/history"))
        );
        assert_eq!(history_path(None, None), None);
    }
}
