//! A fixed-size ring of count buckets at one resolution.
//!
//! Bucket `i` covers unix seconds `[i × res, (i + 1) × res)`. The ring holds the
//! `len` buckets ending at `head` (the newest bucket ever touched): `(head − len, head]`.
//! A slot is found by `i mod len`, so moving `head` forward only has to zero the
//! slots it skips over; nothing is allocated after construction.

use super::Counts;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ring {
    /// Bucket length in seconds (60 or 3600).
    res_secs: i64,
    /// Parallel columns instead of an array of structs so the latency column can
    /// be left out entirely for services without a latency SLO (a third less memory).
    valid: Box<[u32]>,
    good: Box<[u32]>,
    /// Empty when latency is not tracked; then every sum reports `latency_good = 0`.
    latency_good: Box<[u32]>,
    /// Index of the newest bucket held; `None` until the first write.
    head: Option<i64>,
}

/// `u64` → `u32` without wrapping: a bucket with more than 4 billion runs is
/// not a realistic input, and clamping beats silently wrapping to a small number.
fn clamp32(x: u64) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}

impl Ring {
    pub(crate) fn new(res_secs: i64, len: usize, track_latency: bool) -> Self {
        let len = len.max(1);
        let zeros = || vec![0u32; len].into_boxed_slice();
        Ring {
            res_secs,
            valid: zeros(),
            good: zeros(),
            latency_good: if track_latency {
                zeros()
            } else {
                Box::default()
            },
            head: None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.valid.len()
    }

    pub(crate) fn res_secs(&self) -> i64 {
        self.res_secs
    }

    /// Approximate heap bytes, for the memory budget test and the benchmark.
    pub(crate) fn heap_bytes(&self) -> usize {
        (self.valid.len() + self.good.len() + self.latency_good.len()) * size_of::<u32>()
    }

    fn len_i64(&self) -> i64 {
        i64::try_from(self.len()).unwrap_or(i64::MAX)
    }

    fn slot(&self, idx: i64) -> usize {
        // rem_euclid of a positive length is in [0, len), so the cast is lossless.
        idx.rem_euclid(self.len_i64()) as usize
    }

    fn clear(&mut self, slot: usize) {
        self.valid[slot] = 0;
        self.good[slot] = 0;
        if let Some(l) = self.latency_good.get_mut(slot) {
            *l = 0;
        }
    }

    /// Adds `c` to bucket `idx`. Moves the ring forward when `idx` is newer than
    /// anything held; ignores `idx` when it is older than the ring reaches.
    pub(crate) fn add(&mut self, idx: i64, c: Counts) {
        let len = self.len_i64();
        match self.head {
            None => {
                self.head = Some(idx);
            }
            Some(head) if idx > head => {
                let gap = idx.saturating_sub(head);
                if gap >= len {
                    for s in 0..self.len() {
                        self.clear(s);
                    }
                } else {
                    for i in head + 1..=idx {
                        let s = self.slot(i);
                        self.clear(s);
                    }
                }
                self.head = Some(idx);
            }
            Some(head) if idx <= head.saturating_sub(len) => return,
            Some(_) => {}
        }
        let s = self.slot(idx);
        self.valid[s] = self.valid[s].saturating_add(clamp32(c.valid));
        self.good[s] = self.good[s].saturating_add(clamp32(c.good));
        if let Some(l) = self.latency_good.get_mut(s) {
            *l = l.saturating_add(clamp32(c.latency_good));
        }
    }

    /// A ring of `len` buckets holding this ring's newest `len` buckets, or
    /// `None` when it would need data this ring never kept (a longer reach, or
    /// a latency column this ring did not track).
    pub(crate) fn carried(&self, len: usize, track_latency: bool) -> Option<Ring> {
        if len > self.len() || (track_latency && self.latency_good.is_empty()) {
            return None;
        }
        let mut r = Ring::new(self.res_secs, len, track_latency);
        if let Some(head) = self.head {
            let first = head.saturating_sub(r.len_i64()) + 1;
            for i in first..=head {
                r.add(i, self.sum(i, i));
            }
        }
        Some(r)
    }

    /// Sum of buckets `from..=to` that the ring still holds.
    pub(crate) fn sum(&self, from: i64, to: i64) -> Counts {
        let Some(head) = self.head else {
            return Counts::default();
        };
        let lo = from.max(head.saturating_sub(self.len_i64()) + 1);
        let hi = to.min(head);
        let mut c = Counts::default();
        let mut i = lo;
        while i <= hi {
            let s = self.slot(i);
            c.valid += u64::from(self.valid[s]);
            c.good += u64::from(self.good[s]);
            if let Some(l) = self.latency_good.get(s) {
                c.latency_good += u64::from(*l);
            }
            i += 1;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(good: bool) -> Counts {
        Counts {
            valid: 1,
            good: u64::from(good),
            latency_good: u64::from(good),
        }
    }

    #[test]
    fn moving_forward_zeroes_skipped_slots_and_drops_old_writes() {
        let mut r = Ring::new(60, 4, true);
        r.add(10, one(true));
        r.add(11, one(false));
        r.add(13, one(true));
        assert_eq!(r.sum(10, 13).valid, 3);
        // Head moves to 15: buckets 12..=15 are held; 10 and 11 fall out.
        r.add(15, one(true));
        assert_eq!(
            r.sum(0, 100),
            Counts {
                valid: 2,
                good: 2,
                latency_good: 2
            }
        );
        // Older than the ring: ignored. Out of order but in range: counted.
        r.add(11, one(true));
        r.add(12, one(false));
        assert_eq!(r.sum(0, 100).valid, 3);
        assert_eq!(r.sum(12, 12).good, 0);
        // A jump past the whole ring clears everything.
        r.add(100, one(true));
        assert_eq!(r.sum(0, 1000).valid, 1);
    }

    #[test]
    fn untracked_latency_reads_zero_and_negative_indices_work() {
        let mut r = Ring::new(3600, 3, false);
        r.add(-2, one(true));
        r.add(-1, one(true));
        assert_eq!(
            r.sum(-5, 0),
            Counts {
                valid: 2,
                good: 2,
                latency_good: 0
            }
        );
        assert_eq!(r.heap_bytes(), 2 * 3 * 4);
    }
}
