//! Just enough XML for UPnP descriptions and SOAP answers: find elements by local name
//! (any namespace prefix) and read their text. Lenient on purpose: router firmware is
//! known for descriptions a strict parser rejects (stray `&`, odd prefixes, text after
//! the root), and all that is needed is the text of a few known elements.
//!
//! Never panics: every index comes from `find` on the same string and is a character
//! boundary (the searched-for bytes are ASCII).

/// The inner text of every element named `name` (prefix ignored), outermost first;
/// nested elements of the same name are included inside their parent's text, not
/// listed again.
pub fn elements<'a>(doc: &'a str, name: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((open_end, self_closing)) = next_open(doc, at, name) {
        if self_closing {
            out.push("");
            at = open_end;
            continue;
        }
        match matching_close(doc, open_end, name) {
            Some((close_start, close_end)) => {
                out.push(&doc[open_end..close_start]);
                at = close_end;
            }
            None => break,
        }
    }
    out
}

/// The decoded, trimmed text of the first element named `name`.
pub fn text(doc: &str, name: &str) -> Option<String> {
    elements(doc, name).first().map(|t| decode(t.trim()))
}

/// Where the next opening tag of `name` after `from` ends, and whether it is `<x/>`.
fn next_open(doc: &str, mut from: usize, name: &str) -> Option<(usize, bool)> {
    loop {
        let lt = from + doc.get(from..)?.find('<')?;
        let gt = lt + doc[lt..].find('>')?;
        let tag = &doc[lt + 1..gt];
        from = gt + 1;
        if tag.starts_with(['/', '?', '!']) {
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag_name = tag
            .trim_end_matches('/')
            .split(|c: char| c.is_whitespace())
            .next()
            .unwrap_or_default();
        if local(tag_name).eq_ignore_ascii_case(name) {
            return Some((from, self_closing));
        }
    }
}

/// The closing tag that matches an element of `name` opened just before `from`,
/// counting nested elements of the same name: (start of `</`, end after `>`).
fn matching_close(doc: &str, mut from: usize, name: &str) -> Option<(usize, usize)> {
    let mut depth = 1usize;
    loop {
        let lt = from + doc.get(from..)?.find('<')?;
        let gt = lt + doc[lt..].find('>')?;
        let tag = &doc[lt + 1..gt];
        from = gt + 1;
        if let Some(closing) = tag.strip_prefix('/') {
            if local(closing.trim()).eq_ignore_ascii_case(name) {
                depth -= 1;
                if depth == 0 {
                    return Some((lt, from));
                }
            }
        } else if !tag.starts_with(['?', '!']) && !tag.ends_with('/') {
            let tag_name = tag
                .split(|c: char| c.is_whitespace())
                .next()
                .unwrap_or_default();
            if local(tag_name).eq_ignore_ascii_case(name) {
                depth += 1;
            }
        }
    }
}

fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// Replaces the five predefined entities and numeric character references; anything
/// else (a stray `&`) is kept as written.
pub fn decode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let entity = &rest[1..e];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes text for use inside an element.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_elements_with_any_prefix() {
        let doc = r#"<?xml version="1.0"?><!-- <service> in a comment --><root><a:service x="1"><serviceType>A</serviceType></a:service><service><serviceType> B </serviceType><empty/></service></root>"#;
        let services = elements(doc, "service");
        assert_eq!(services.len(), 2);
        assert_eq!(text(services[0], "serviceType").as_deref(), Some("A"));
        assert_eq!(text(services[1], "serviceType").as_deref(), Some("B"));
        assert_eq!(text(services[1], "empty").as_deref(), Some(""));
        assert_eq!(text(doc, "missing"), None);
    }

    #[test]
    fn nested_elements_of_one_name() {
        let doc = "<device><t>outer</t><deviceList><device><t>inner</t></device></deviceList></device><device><t>next</t></device>";
        let devices = elements(doc, "device");
        assert_eq!(devices.len(), 2);
        assert!(devices[0].contains("inner"));
        assert_eq!(text(devices[0], "t").as_deref(), Some("outer"));
        assert_eq!(text(devices[1], "t").as_deref(), Some("next"));
    }

    #[test]
    fn entities() {
        assert_eq!(
            decode("a&amp;b&lt;&gt;&quot;&apos;&#65;&#x42;"),
            "a&b<>\"'AB"
        );
        assert_eq!(decode("AT&T & co &bogus; &"), "AT&T & co &bogus; &");
        assert_eq!(escape("a<&>"), "a&lt;&amp;&gt;");
    }

    #[test]
    fn broken_documents_do_not_panic() {
        for doc in [
            "<",
            "<a",
            "<a>",
            "<a>text",
            "</a>",
            "<a><a></a>",
            "<é:a>ü</é:a>",
            "<a/",
        ] {
            let _ = elements(doc, "a");
            let _ = text(doc, "a");
        }
        assert_eq!(text("<a>unclosed", "a"), None);
    }
}
