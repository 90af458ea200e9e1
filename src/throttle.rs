//! A warning that repeats (a refused connection, a forged hook request, a
//! check's local errors) is
//! logged the first time, then at most once per period with the number of
//! times it was not logged in between: what anyone on the network can
//! trigger must not be able to flood the log. Counters stay exact.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    unlogged: u64,
}

impl Throttle {
    pub fn new(every: Duration) -> Self {
        Throttle {
            every,
            last: None,
            unlogged: 0,
        }
    }

    /// `Some(unlogged)` when a log line is due: how many were skipped since
    /// the last one.
    pub fn due(&mut self) -> Option<u64> {
        self.due_at(Instant::now())
    }

    /// [`Self::due`] for a warning seen at `now`.
    pub fn due_at(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(at) if now.saturating_duration_since(at) < self.every => {
                self.unlogged += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.unlogged))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn logs_the_first_then_once_per_period_with_the_count_skipped() {
        let mut t = Throttle::new(Duration::from_secs(60));
        assert_eq!(t.due(), Some(0));
        assert_eq!(t.due(), None);
        assert_eq!(t.due(), None);
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(t.due(), None);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(t.due(), Some(3));
        assert_eq!(t.due(), None);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(t.due(), Some(1));
    }
}
