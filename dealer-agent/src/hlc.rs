//! The agent's hybrid logical clock: each record gets a stamp that never goes backwards, even
//! when the PC's wall clock is set back, and that stays close to wall time. The last stamp is
//! stored with each record, so it survives restarts.

use hamgam_proto::record::v1::HlcStamp;

/// The next stamp after `last` at wall time `now_ms`.
pub fn tick(last: Option<&HlcStamp>, now_ms: i64) -> HlcStamp {
    match last {
        Some(last) if last.wall_ms >= now_ms => HlcStamp {
            wall_ms: last.wall_ms,
            logical: last.logical.saturating_add(1),
        },
        _ => HlcStamp {
            wall_ms: now_ms,
            logical: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_only_grow_when_the_wall_clock_steps_back() {
        let a = tick(None, 1_000);
        let b = tick(Some(&a), 1_000);
        let c = tick(Some(&b), 400); // clock set back
        let d = tick(Some(&c), 2_000);
        let key = |s: &HlcStamp| (s.wall_ms, s.logical);
        assert!(key(&a) < key(&b) && key(&b) < key(&c) && key(&c) < key(&d));
        assert_eq!(key(&d), (2_000, 0));
    }
}
