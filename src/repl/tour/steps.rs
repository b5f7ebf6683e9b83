//! The tour's steps: read from `steps.txt`, a plain text file embedded in the binary, so
//! that changing the tour never means touching code.
//!
//! The format is described at the top of `steps.txt`. [`parse`] is pure and says which
//! line is wrong; a test parses the embedded file, so a broken one never ships.

use std::sync::OnceLock;

/// One step of the tour.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// The tutorial section it belongs to.
    pub section: String,
    /// Shown before the code.
    pub explain: String,
    /// One line, put at the prompt.
    pub code: String,
    /// Shown after the result.
    pub notice: String,
    /// Texts the result contains in the local world.
    pub expect: Vec<String>,
}

const FIELDS: &[&str] = &["explain", "code", "notice", "expect"];

/// The embedded tour.
pub fn embedded() -> &'static [Step] {
    static STEPS: OnceLock<Vec<Step>> = OnceLock::new();
    // The unit test below parses the same text, so this cannot fail in a built binary.
    STEPS.get_or_init(|| parse(include_str!("steps.txt")).unwrap_or_default())
}

/// Reads steps; an error names the line and what is wrong with it.
pub fn parse(text: &str) -> Result<Vec<Step>, String> {
    let mut steps: Vec<Step> = Vec::new();
    let mut field: Option<&str> = None;
    let mut lines: Vec<&str> = Vec::new();
    let finish = |steps: &mut Vec<Step>, field: Option<&str>, lines: &mut Vec<&str>| {
        let (Some(step), Some(name)) = (steps.last_mut(), field) else {
            return;
        };
        let body = std::mem::take(lines);
        match name {
            "explain" => step.explain = body.join("\n").trim().to_string(),
            "notice" => step.notice = body.join("\n").trim().to_string(),
            "code" => step.code = body.join("\n").trim().to_string(),
            _ => {
                step.expect = body
                    .iter()
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect();
            }
        }
    };
    for (n, line) in text.lines().enumerate() {
        let at = n + 1;
        if let Some(section) = line.strip_prefix("== ") {
            finish(&mut steps, field, &mut lines);
            field = None;
            steps.push(Step {
                section: section.trim().to_string(),
                ..Step::default()
            });
            continue;
        }
        if steps.is_empty() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            return Err(format!(
                "line {at}: text before the first \"== SECTION\" line"
            ));
        }
        if let Some(name) = line.strip_suffix(':').filter(|n| FIELDS.contains(n)) {
            finish(&mut steps, field, &mut lines);
            field = Some(name);
            continue;
        }
        if field.is_none() {
            if line.trim().is_empty() {
                continue;
            }
            return Err(format!(
                "line {at}: text outside a field (start one with {})",
                field_list()
            ));
        }
        lines.push(line);
    }
    finish(&mut steps, field, &mut lines);
    for (i, step) in steps.iter().enumerate() {
        if step.code.is_empty() || step.code.contains('\n') {
            return Err(format!(
                "step {} ({}): code must be one line",
                i + 1,
                step.section
            ));
        }
        if step.explain.is_empty() || step.notice.is_empty() {
            return Err(format!(
                "step {} ({}): explain and notice are needed",
                i + 1,
                step.section
            ));
        }
    }
    if steps.is_empty() {
        return Err("no steps".into());
    }
    Ok(steps)
}

fn field_list() -> String {
    FIELDS
        .iter()
        .map(|f| format!("\"{f}:\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_tour_parses_and_walks_the_tutorial() {
        let steps = parse(include_str!("steps.txt")).unwrap();
        assert_eq!(embedded(), steps.as_slice());
        let sections: Vec<&str> = steps.iter().map(|s| s.section.as_str()).collect();
        let mut order: Vec<&str> = sections.clone();
        order.dedup();
        assert_eq!(
            order,
            [
                "Running async code",
                "Network interface cards",
                "Listing and loading interfaces",
                "The addressing problem",
                "Routes to the rescue",
                "A first networking program"
            ]
        );
    }

    #[test]
    fn fields_and_errors() {
        let text =
            "# c\n== S\nexplain:\nsay\nthis\ncode:\n  x = 1  \nnotice:\nsee\nexpect:\na\n\nb\n";
        let steps = parse(text).unwrap();
        assert_eq!(
            steps,
            [Step {
                section: "S".into(),
                explain: "say\nthis".into(),
                code: "x = 1".into(),
                notice: "see".into(),
                expect: vec!["a".into(), "b".into()],
            }]
        );
        assert!(parse("oops\n== S").unwrap_err().starts_with("line 1:"));
        assert!(parse("== S\nstray\n").unwrap_err().starts_with("line 2:"));
        assert!(
            parse("== S\nexplain:\nx\nnotice:\ny\n")
                .unwrap_err()
                .contains("one line")
        );
        assert!(
            parse("== S\ncode:\nx\n")
                .unwrap_err()
                .contains("explain and notice")
        );
        assert_eq!(parse("# only comments\n").unwrap_err(), "no steps");
    }
}
