//! The guided tour: P2PD's Basics tutorial, one step at a time, at the REPL prompt.
//!
//! Each step says what it is about, puts its code at the prompt (Enter runs it, or edit it
//! first), and after the result says what to look at. Enter on an empty prompt moves on;
//! `next()`, `back()`, `step(n)` and `steps()` move around; `quit`, `exit` or Ctrl-D leave
//! the tour, never the session: every variable made on the way stays.
//!
//! [`Tour`] is a pure state machine: inputs in, a [`Turn`] out (what to print, what to put
//! at the prompt, whether the tour is over). The REPL does the printing and the running;
//! the steps themselves are data (`steps.txt`, see [`steps`]).

pub mod steps;

pub use steps::Step;

/// An input the tour answers itself instead of running it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Start,
    Next,
    Back,
    /// `step(n)`, 1-based; 0 when `n` is not a step number.
    Goto(usize),
    List,
    Leave,
}

/// Reads a tour command: `tour()` at any time, the others only while `touring`, so that
/// outside the tour `next()` is an ordinary call.
pub fn command(input: &str, touring: bool) -> Option<Command> {
    let text = input.trim().trim_end_matches(';').trim_end();
    if text == "tour()" {
        return Some(Command::Start);
    }
    if !touring {
        return None;
    }
    Some(match text {
        "next()" => Command::Next,
        "back()" => Command::Back,
        "steps()" => Command::List,
        "quit" | "exit" | "quit()" | "exit()" => Command::Leave,
        _ => {
            let n = text.strip_prefix("step(")?.strip_suffix(')')?;
            Command::Goto(n.trim().parse().unwrap_or(0))
        }
    })
}

/// What the REPL does after an input: print `say`, put `prompt` at the next prompt,
/// and end the tour if `done`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Turn {
    pub say: Vec<String>,
    pub prompt: Option<String>,
    pub done: bool,
}

/// Where a person is in the tour.
pub struct Tour<'s> {
    steps: &'s [Step],
    at: usize,
    /// The current step's code ran without error.
    ran: bool,
    /// Which steps' code has run: a later step may need what they made.
    done: Vec<bool>,
    /// How many earlier steps were missing when that was last said.
    warned: usize,
}

impl<'s> Tour<'s> {
    /// A tour over `steps`, which must not be empty.
    pub fn new(steps: &'s [Step]) -> Self {
        Self {
            steps,
            at: 0,
            ran: false,
            done: vec![false; steps.len()],
            warned: 0,
        }
    }

    /// The 0-based index of the current step.
    pub fn position(&self) -> usize {
        self.at
    }

    fn step(&self) -> &'s Step {
        &self.steps[self.at]
    }

    /// The introduction and the first step.
    pub fn begin(&mut self) -> Turn {
        let mut turn = self.show(0);
        turn.say.insert(
            0,
            format!(
                "A guided tour of P2PD's Basics tutorial in {} steps. Each step puts its code at the\n\
                 prompt: Enter runs it (edit it first if you like), and Enter on an empty prompt\n\
                 goes on. next(), back(), step(n) and steps() move around; quit or Ctrl-D leave\n\
                 the tour, and everything you made stays.",
                self.steps.len()
            ),
        );
        turn
    }

    fn show(&mut self, at: usize) -> Turn {
        self.at = at;
        self.ran = false;
        let step = self.step();
        let mut say = vec![format!(
            "\n[{}/{}] {}\n{}",
            at + 1,
            self.steps.len(),
            step.section,
            step.explain
        )];
        let missing: Vec<usize> = (0..at).filter(|&i| !self.done[i]).collect();
        if missing.len() > self.warned {
            say.push(format!(
                "(Not run yet: {}. Code here that needs what they make will fail; step(n) goes back.)",
                step_list(&missing)
            ));
        }
        self.warned = missing.len();
        Turn {
            say,
            prompt: Some(step.code.clone()),
            done: false,
        }
    }

    /// The current code again, if it has not run yet.
    fn again(&self, say: Vec<String>) -> Turn {
        Turn {
            say,
            prompt: (!self.ran).then(|| self.step().code.clone()),
            done: false,
        }
    }

    pub fn command(&mut self, cmd: Command) -> Turn {
        let last = self.steps.len();
        match cmd {
            Command::Start => self.begin(),
            Command::Next => self.forward(),
            Command::Back if self.at == 0 => self.again(vec!["This is the first step.".into()]),
            Command::Back => self.show(self.at - 1),
            Command::Goto(n) if (1..=last).contains(&n) => self.show(n - 1),
            Command::Goto(_) => self.again(vec![format!("The tour has steps 1 to {last}.")]),
            Command::List => self.again(vec![self.list()]),
            Command::Leave => self.leave(),
        }
    }

    fn list(&self) -> String {
        let mut out = String::from("The tour's steps (step(n) goes to one):");
        for (i, s) in self.steps.iter().enumerate() {
            let mark = if i == self.at { '>' } else { ' ' };
            let code: String = s.code.chars().take(48).collect();
            let more = if s.code.chars().count() > 48 {
                "..."
            } else {
                ""
            };
            out.push_str(&format!(
                "\n {mark} {:>2}  {}: {code}{more}",
                i + 1,
                s.section
            ));
        }
        out
    }

    /// An input ran (`ok` if it succeeded). The first success after a step is shown gets
    /// the step's notice; a failure puts the input back at the prompt to edit.
    pub fn ran(&mut self, ok: bool, input: &str) -> Turn {
        if self.ran {
            return Turn::default();
        }
        if !ok {
            return Turn {
                say: vec![
                    "That failed: it is back at the prompt to edit, or next() skips it.".into(),
                ],
                prompt: Some(input.to_string()),
                done: false,
            };
        }
        self.ran = true;
        self.done[self.at] = true;
        let next = if self.at + 1 == self.steps.len() {
            "(Enter on the empty prompt ends the tour.)"
        } else {
            "(Enter on the empty prompt: next step.)"
        };
        Turn {
            say: vec![format!("\n{}\n{next}", self.step().notice)],
            prompt: None,
            done: false,
        }
    }

    /// Enter on an empty prompt: the next step.
    pub fn empty_line(&mut self) -> Turn {
        self.forward()
    }

    fn forward(&mut self) -> Turn {
        if self.at + 1 < self.steps.len() {
            return self.show(self.at + 1);
        }
        Turn {
            say: vec![
                "That was the last step: the tour is over. Everything you made is still here;\n\
                 help() lists every function, scripts/ has the tutorial as scripts, and tour()\n\
                 starts over."
                    .into(),
            ],
            prompt: None,
            done: true,
        }
    }

    /// `quit`, `exit` or Ctrl-D.
    pub fn leave(&mut self) -> Turn {
        Turn {
            say: vec![format!(
                "Left the tour at step {} of {}; everything you made stays. tour() starts over.",
                self.at + 1,
                self.steps.len()
            )],
            prompt: None,
            done: true,
        }
    }
}

/// `step 2` or `steps 1, 3-5` for 0-based indexes.
fn step_list(indexes: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < indexes.len() {
        let mut j = i;
        while j + 1 < indexes.len() && indexes[j + 1] == indexes[j] + 1 {
            j += 1;
        }
        parts.push(if j == i {
            format!("{}", indexes[i] + 1)
        } else {
            format!("{}-{}", indexes[i] + 1, indexes[j] + 1)
        });
        i = j + 1;
    }
    let noun = if indexes.len() == 1 { "step" } else { "steps" };
    format!("{noun} {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(n: usize) -> Vec<Step> {
        (1..=n)
            .map(|i| Step {
                section: format!("S{i}"),
                explain: format!("explain {i}"),
                code: format!("code{i}()"),
                notice: format!("notice {i}"),
                expect: vec![],
            })
            .collect()
    }

    #[test]
    fn commands_outside_the_tour_are_only_tour() {
        assert_eq!(command(" tour() ; ", false), Some(Command::Start));
        assert_eq!(command("next()", false), None);
        assert_eq!(command("next();", true), Some(Command::Next));
        assert_eq!(command("step( 3 )", true), Some(Command::Goto(3)));
        assert_eq!(command("step(x)", true), Some(Command::Goto(0)));
        assert_eq!(command("exit", true), Some(Command::Leave));
        assert_eq!(command("next() + 1", true), None);
        assert_eq!(command("stepper(1)", true), None);
    }

    #[test]
    fn a_walk_through_shows_code_then_notice_then_the_next_step() {
        let all = steps(2);
        let mut t = Tour::new(&all);
        let turn = t.begin();
        assert!(turn.say[0].contains("2 steps"));
        assert!(turn.say[1].contains("[1/2] S1\nexplain 1"));
        assert_eq!(turn.prompt.as_deref(), Some("code1()"));
        // A failure gives the edited input back and no notice.
        let turn = t.ran(false, "code1(x)");
        assert_eq!(turn.prompt.as_deref(), Some("code1(x)"));
        assert!(!turn.say[0].contains("notice"));
        let turn = t.ran(true, "code1()");
        assert!(turn.say[0].contains("notice 1") && turn.say[0].contains("next step"));
        assert_eq!(turn.prompt, None);
        // Later inputs on the same step say nothing more.
        assert_eq!(t.ran(true, "other()"), Turn::default());
        let turn = t.empty_line();
        assert!(turn.say[0].contains("[2/2] S2"));
        assert!(t.ran(true, "code2()").say[0].contains("ends the tour"));
        let turn = t.empty_line();
        assert!(turn.done && turn.say[0].contains("tour is over"));
    }

    #[test]
    fn moving_around() {
        let all = steps(3);
        let mut t = Tour::new(&all);
        t.begin();
        let turn = t.command(Command::Back);
        assert_eq!(turn.say, ["This is the first step."]);
        assert_eq!(turn.prompt.as_deref(), Some("code1()"));
        assert!(t.command(Command::Goto(3)).say[0].contains("[3/3]"));
        assert_eq!(t.position(), 2);
        assert!(t.command(Command::Goto(4)).say[0].contains("steps 1 to 3"));
        assert!(t.command(Command::Back).say[0].contains("[2/3]"));
        let list = t.command(Command::List).say[0].clone();
        assert!(list.contains(" >  2  S2: code2()"), "{list}");
        let turn = t.command(Command::Leave);
        assert!(turn.done && turn.say[0].contains("step 2 of 3"));
    }

    #[test]
    fn skipping_steps_is_said_once_per_new_gap() {
        let all = steps(5);
        let mut t = Tour::new(&all);
        t.begin();
        t.ran(true, "code1()");
        let turn = t.command(Command::Goto(4));
        assert_eq!(turn.say.len(), 2);
        assert!(
            turn.say[1].starts_with("(Not run yet: steps 2-3."),
            "{:?}",
            turn.say
        );
        // Going on from there says nothing new; skipping step 4 too does.
        let turn = t.empty_line();
        assert!(
            turn.say[1].starts_with("(Not run yet: steps 2-4."),
            "{:?}",
            turn.say
        );
        assert_eq!(t.command(Command::Back).say.len(), 1);
        assert_eq!(step_list(&[0, 2, 3, 4, 7]), "steps 1, 3-5, 8");
        assert_eq!(step_list(&[1]), "step 2");
    }
}
