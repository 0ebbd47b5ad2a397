//! Hybrid logical clock: `physical_ms << 16 | logical`. Greater than every event the author
//! has seen, close to wall time, and never goes backwards across restarts (the last value is
//! persisted with each authored event).
pub const LOGICAL_BITS: u32 = 16;

pub fn physical_ms(hlc: u64) -> u64 {
    hlc >> LOGICAL_BITS
}

/// The next value for a local event: after `last` (everything seen so far) and not before now.
pub fn tick(last: u64, now_ms: u64) -> u64 {
    let wall = now_ms << LOGICAL_BITS;
    if wall > last {
        wall
    } else {
        last + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_follows_wall_time_and_never_goes_back() {
        let a = tick(0, 1000);
        assert_eq!(physical_ms(a), 1000);
        let b = tick(a, 999); // clock stepped back
        assert!(b > a);
        let c = tick(b, 2000);
        assert_eq!(physical_ms(c), 2000);
    }
}
