//! The fuzz targets on stable Rust: every file kept in fuzz/corpus/, then a deterministic
//! stream of mutations of valid frames (bit flips, truncations, splices, length-field
//! garbage), through the same entry points the cargo-fuzz targets call. Nothing may panic.
use std::path::Path;

fn corpus(dir: &str) -> Vec<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(dir);
    let entries = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("the kept corpus {} is missing: {e}", path.display()));
    let mut out = Vec::new();
    for e in entries {
        let e = e.unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        out.push(
            std::fs::read(e.path())
                .unwrap_or_else(|err| panic!("reading {}: {err}", e.path().display())),
        );
    }
    assert!(
        !out.is_empty(),
        "the kept corpus {} is empty",
        path.display()
    );
    out
}

/// xorshift: the same mutations on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.truncate(rng.below(v.len() + 1)),
            2 => {
                let other = &seeds[rng.below(seeds.len())];
                let at = rng.below(v.len() + 1);
                let from = rng.below(other.len() + 1);
                v.splice(at..at, other[from..].iter().copied());
            }
            3 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = [0x00, 0x7f, 0x80, 0xff][rng.below(4)];
            }
            _ => v.push(rng.next() as u8),
        }
    }
    v
}

#[test]
fn the_kept_corpus_and_ten_thousand_mutations_never_panic() {
    let mut seeds = liandong::fuzzing::seeds();
    let events = corpus("event_frame");
    let frames = corpus("sync_frame");
    for input in events.iter().chain(frames.iter()) {
        liandong::fuzzing::event_frame(input);
        liandong::fuzzing::sync_frame(input);
    }
    seeds.extend(events);
    seeds.extend(frames);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..10_000 {
        let input = mutate(&mut rng, &seeds);
        liandong::fuzzing::event_frame(&input);
        liandong::fuzzing::sync_frame(&input);
    }
}
