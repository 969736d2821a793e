//! Memory given back after a burst.
//!
//! Measured: three rounds of 1,000 slow clients took a server from 37 MiB
//! to 77, 80 and 81 MiB, where it stayed. Not a leak (the third round added
//! almost nothing): glibc keeps what the connections freed in its arenas,
//! one per thread that allocated, and returns it only when asked. So the
//! server asks (`malloc_trim`) once its connections have fallen well below
//! their peak, which is when an attack or a burst of registrations ends,
//! and never in the middle of serving one.

/// Peaks below this many connections are ordinary traffic: nothing to do.
const BURST: usize = 256;

/// Watches the connection count and says when a burst has ended.
#[derive(Debug, Default)]
pub struct AfterBurst {
    peak: usize,
}

impl AfterBurst {
    /// Records the connections open now; true when a burst of at least
    /// `BURST` has fallen to a quarter of its peak (the peak then restarts
    /// from here).
    pub fn ended(&mut self, open: usize) -> bool {
        self.peak = self.peak.max(open);
        if self.peak >= BURST && open * 4 <= self.peak {
            self.peak = open;
            return true;
        }
        false
    }
}

/// Returns the allocator's free memory to the system.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_ends_when_connections_fall_to_a_quarter_of_its_peak() {
        let mut watch = AfterBurst::default();
        assert!(!watch.ended(100));
        assert!(!watch.ended(20), "ordinary traffic");
        assert!(!watch.ended(1_000));
        assert!(!watch.ended(400));
        assert!(watch.ended(250));
        assert!(!watch.ended(200), "once per burst");
        assert!(!watch.ended(10));
        assert!(!watch.ended(2_000));
        assert!(watch.ended(0));
    }
}
