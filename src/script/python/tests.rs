use super::*;

fn shape(src: &str) -> Shaping {
    rewrite(src, &|n| n == "known")
}

fn code(src: &str) -> String {
    let s = shape(src);
    assert_eq!(s.refused().count(), 0, "{src}: {:?}", s.forms);
    s.code
}

#[test]
fn imports_become_nothing_and_a_note() {
    let s = shape("import asyncio");
    assert_eq!(s.code.trim(), "");
    assert_eq!(s.imports, ["asyncio"]);
    let s = shape("from p2pd import *\nimport asyncio.subprocess as sp; 1 + 1");
    assert_eq!(s.imports, ["p2pd", "asyncio"]);
    assert_eq!(s.code.trim(), "1 + 1");
    assert!(s.import_note().unwrap().contains("(p2pd, asyncio)"));
    // Rhai's own import (a string path) is left alone.
    assert_eq!(code(r#"import "util" as u;"#), r#"import "util" as u;"#);
    assert!(shape("1").import_note().is_none());
}

#[test]
fn new_names_get_let_and_known_ones_do_not() {
    assert_eq!(
        code("netifaces = await init_p2pd() # Loads netifaces."),
        "let netifaces = await init_p2pd() // Loads netifaces."
    );
    assert_eq!(code("known = 5"), "known = 5");
    assert_eq!(code("x = 1; x = 2"), "let x = 1; x = 2");
    assert_eq!(code("let y = 1; y = 2"), "let y = 1; y = 2");
    assert_eq!(code("x == 1"), "x == 1");
    assert_eq!(code("x += 1"), "x += 1");
    assert_eq!(code("a.b = 1"), "a.b = 1");
    // Only top-level statements: a block keeps Rhai's meaning.
    assert_eq!(code("if true { z = 1 }"), "if true { z = 1 }");
    assert_eq!(code("fn f() { z = 1 } w = 2"), "fn f() { z = 1 } let w = 2");
}

#[test]
fn keyword_arguments_map_to_positions() {
    assert_eq!(code("pipe.recv(timeout=3)"), "pipe.recv((), 3)");
    assert_eq!(code("pipe.recv(sub, timeout=3)"), "pipe.recv(sub, 3)");
    assert_eq!(code("p.recv(full=True)"), "p.recv((), (), true)");
    assert_eq!(
        code("ifs = await load_interfaces(netifaces=netifaces)"),
        "let ifs = await load_interfaces(netifaces)"
    );
    assert_eq!(code("i.start(timeout=0.5)"), "i.start(0.5)");
    assert_eq!(
        code("i.load_nat(timeout=5, delta_tests=1)"),
        "i.load_nat(#{timeout: 5, delta_tests: 1})"
    );
    assert_eq!(
        code("route.bind(ips=\"127.0.0.1\")"),
        "route.bind(0, \"127.0.0.1\")"
    );
    // Nested calls are rewritten inside the moved arguments too.
    assert_eq!(code("f(p.recv(timeout=None))"), "f(p.recv((), ()))");
    assert_eq!(
        code("pipe_open(TCP, dest, route, up_cb=None)"),
        "pipe_open(TCP, dest, route, (), ())"
    );
}

#[test]
fn unknown_keywords_are_refused_with_advice() {
    let s = shape("frobnicate(level=3)");
    let refused: Vec<&Form> = s.refused().collect();
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0].advice.contains("pass the values in order"),
        "{:?}",
        refused
    );
    let s = shape("p.recv(bogus=1)");
    assert!(
        s.refused()
            .next()
            .unwrap()
            .advice
            .contains("takes sub, timeout, full")
    );
    let s = shape("p.recv(timeout=1, 2)");
    assert!(
        s.refused()
            .next()
            .unwrap()
            .advice
            .contains("positional argument follows")
    );
    let s = shape("route.bind(ips=1, ips=2)");
    assert!(s.refused().next().unwrap().advice.contains("twice"));
    let s = shape("Address(port=80)");
    assert!(s.refused().next().unwrap().advice.contains("needs `host`"));
}

#[test]
fn strings_and_comments_are_never_rewritten() {
    let src = r#"print("x = 1, recv(timeout=3) # None") // y = True"#;
    assert_eq!(code(src), src);
    let src = "`${ \"x = 1\" }`";
    assert_eq!(code(src), src);
}

#[test]
fn line_breaks_between_statements_get_semicolons() {
    let src = "# Start the default interface.\ni = await Interface().start()\n\nawait i.load_nat()\nrepr(i)";
    let s = shape(src);
    assert_eq!(
        s.code,
        "// Start the default interface.\nlet i = await Interface().start();\n\nawait i.load_nat();\nrepr(i)"
    );
    assert!(s.ends_with_repr);
    // Continuations are not statements.
    assert_eq!(code("let a = 1 +\n  2"), "let a = 1 +\n  2");
    assert_eq!(code("let a = s\n  .len()"), "let a = s\n  .len()");
    assert_eq!(code("fn f() {\n  1\n}"), "fn f() {\n  1\n}");
    assert_eq!(code("let a = 1;\nlet b = 2"), "let a = 1;\nlet b = 2");
}

#[test]
fn repr_as_the_last_statement_is_detected() {
    assert!(shape("repr(i)").ends_with_repr);
    assert!(shape("let a = 1; repr(a)").ends_with_repr);
    assert!(shape("repr(i) // shown as text").ends_with_repr);
    assert!(!shape("print(repr(i))").ends_with_repr);
    assert!(!shape("x = repr(i)").ends_with_repr);
    assert!(!shape("repr(i);").ends_with_repr);
    assert!(!shape("repr(i) + \"x\"").ends_with_repr);
    assert!(!shape("my.repr(i)").ends_with_repr);
}

#[test]
fn python_constants_and_def() {
    assert_eq!(code("x = None"), "let x = ()");
    assert_eq!(code("[True, False]"), "[true, false]");
    assert_eq!(code("a.None"), "a.None");
    let s = shape("async def main():");
    let f = s.refused().next().expect("def is refused");
    assert!(f.advice.contains("fn main() {"), "{}", f.advice);
}

#[test]
fn script_hints_name_the_rhai_form_on_the_failing_line() {
    let src = "let p = 1;\np.recv(timeout=3);\nimport asyncio\n";
    let h = hint(src, 2).expect("a hint for line 2");
    assert!(h.contains("`recv(timeout=3)` is `recv((), 3)`"), "{h}");
    assert!(hint(src, 3).unwrap().contains("needs no import"));
    assert_eq!(hint(src, 1), None);
    let h = hint("x = 1;\n", 1).unwrap();
    assert!(h.contains("let x = ...;"), "{h}");
}
