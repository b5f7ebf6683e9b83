//! A small mutation fuzzer for the parsers that read bytes or text from outside: the STUN
//! decoder and server, stream framing, and the parsers behind script arguments. Self-
//! contained (no nightly, no libFuzzer) so it runs inside `cargo test`; each target's tests
//! call [`run`] with seeds and a check, and the check states an invariant, not only "no
//! panic".
//!
//! Each target runs for `P2PD_FUZZ_SECS` seconds (default 2) from seed `P2PD_FUZZ_SEED`
//! (default: the clock). A failure panics with the seed and the input, so
//! `P2PD_FUZZ_SEED=<seed> cargo test --lib fuzz_` repeats it. To fuzz longer:
//! `P2PD_FUZZ_SECS=600 cargo test --release --lib fuzz_ -- --nocapture`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

/// xorshift64*: fast, and the same sequence for the same seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Byte values that tend to sit on edges: lengths, type bits, the cookie's bytes.
const INTERESTING: [u8; 12] = [
    0x00, 0x01, 0x03, 0x04, 0x14, 0x21, 0x7f, 0x80, 0xa4, 0xc0, 0xfe, 0xff,
];

/// One to four random edits of `input`, sometimes spliced with another seed.
pub fn mutate(rng: &mut Rng, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let len = out.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = *rng.pick(&INTERESTING);
            }
            2 => {
                let i = rng.below(len + 1);
                out.insert(i, rng.next() as u8);
            }
            3 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(8)).min(len);
                out.drain(start..end);
            }
            4 if len >= 2 => {
                // A 16-bit field (a length or a type) set to an edge value.
                let i = rng.below(len - 1);
                let v: u16 = *rng.pick(&[0, 1, 3, 4, 0x7fff, 0x8000, 0xfffc, 0xffff]);
                out[i..i + 2].copy_from_slice(&v.to_be_bytes());
            }
            5 => out.truncate(rng.below(len + 1)),
            6 if !seeds.is_empty() => {
                let other = rng.pick(seeds);
                let at = rng.below(len + 1);
                let take = rng.below(other.len() + 1);
                out.splice(at..at, other[..take].iter().copied());
            }
            7 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16)).min(len);
                let copy = out[start..end].to_vec();
                out.splice(start..start, copy);
            }
            _ => out.push(rng.next() as u8),
        }
    }
    out
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

/// Feeds mutations of `seeds` to `check` for the configured time. `check` returns why an
/// input broke an invariant, or panics; both fail the test with the seed and the input.
/// Returns how many inputs were tried.
pub fn run(
    target: &str,
    seeds: &[Vec<u8>],
    mut check: impl FnMut(&[u8]) -> Result<(), String>,
) -> u64 {
    let secs = env_u64("P2PD_FUZZ_SECS").unwrap_or(2);
    let seed = env_u64("P2PD_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let mut rng = Rng::new(seed);
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tried = 0u64;
    let mut corpus: Vec<Vec<u8>> = seeds.to_vec();
    while tried < 100 || Instant::now() < until {
        let input = if tried < seeds.len() as u64 {
            seeds[tried as usize].clone()
        } else {
            let base = rng.pick(&corpus).clone();
            mutate(&mut rng, &base, seeds)
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&input)));
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(why)) => Some(why),
            Err(_) => Some("panicked".to_string()),
        };
        if let Some(why) = failure {
            let shown: String = String::from_utf8_lossy(&input).chars().take(300).collect();
            panic!(
                "fuzz target {target}: {why}\nseed {seed} (P2PD_FUZZ_SEED={seed}), input {} bytes: {:02x?}\nas text: {shown:?}",
                input.len(),
                &input[..input.len().min(200)]
            );
        }
        // Keep some mutants as bases, so edits accumulate past the seeds.
        if tried.is_multiple_of(16) && corpus.len() < 4096 && input.len() < 4096 {
            corpus.push(input);
        }
        tried += 1;
    }
    eprintln!("fuzz {target}: {tried} inputs in {secs} s, seed {seed}");
    tried
}

/// Seeds for text parsers: `samples` plus edge texts every parser should meet.
pub fn text_seeds(samples: &[&str]) -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = samples.iter().map(|s| s.as_bytes().to_vec()).collect();
    for edge in [
        "",
        " ",
        ":",
        "[]",
        "[::]:",
        "%",
        "é€",
        "\0",
        "\\x",
        "a".repeat(300).as_str(),
    ] {
        seeds.push(edge.as_bytes().to_vec());
    }
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_repeatable_and_stay_near_the_seed() {
        let seeds = vec![b"0123456789".to_vec()];
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            let x = mutate(&mut a, &seeds[0], &seeds);
            assert_eq!(x, mutate(&mut b, &seeds[0], &seeds));
            assert!(x.len() <= 10 + 4 * 16 + 10);
        }
    }

    #[test]
    #[should_panic(expected = "fuzz target always-fails")]
    fn a_broken_invariant_fails_the_run() {
        run("always-fails", &[b"x".to_vec()], |_| Err("no".into()));
    }
}
