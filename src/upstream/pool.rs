//! Pool member selection: priority groups tried lowest number first; within a group a smooth
//! weighted round-robin schedule (nginx's algorithm, precomputed once) walked by an atomic
//! cursor, so weights hold on every pick, not only the first, and the request path takes no lock.
//! Unavailable members (circuit open, unhealthy) are skipped; a group is passed over only when
//! none of its members is available.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

pub struct Group {
    pub priority: u32,
    /// Backend indices of the members.
    pub members: Vec<usize>,
    pub weights: Vec<u32>,
    /// Member positions in pick order; one full cycle is the sum of the weights.
    schedule: Vec<u16>,
    cursor: AtomicUsize,
}

impl Group {
    pub fn new(priority: u32, members: Vec<usize>, weights: Vec<u32>) -> Group {
        let schedule = smooth_schedule(&weights);
        Group {
            priority,
            members,
            weights,
            schedule,
            cursor: AtomicUsize::new(0),
        }
    }

    /// The next available member by the schedule; at most one cycle is walked.
    pub fn pick(&self, available: &dyn Fn(usize) -> bool) -> Option<usize> {
        if !self.members.iter().any(|&m| available(m)) {
            return None;
        }
        let n = self.schedule.len();
        for _ in 0..n {
            let i = self.cursor.fetch_add(1, Relaxed) % n;
            let m = self.members[usize::from(self.schedule[i])];
            if available(m) {
                return Some(m);
            }
        }
        None
    }
}

pub struct Pool {
    /// Sorted by priority, lowest number first.
    pub groups: Vec<Group>,
}

impl Pool {
    /// Number of members.
    pub fn size(&self) -> usize {
        self.groups.iter().map(|g| g.members.len()).sum()
    }

    /// The first available member of the best group that has one.
    pub fn pick(&self, available: &dyn Fn(usize) -> bool) -> Option<usize> {
        self.groups.iter().find_map(|g| g.pick(available))
    }
}

/// Smooth weighted round-robin: each step every member gains its weight, the largest is picked
/// and loses the total. Over a cycle each member appears exactly `weight` times, interleaved.
fn smooth_schedule(weights: &[u32]) -> Vec<u16> {
    let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for (i, w) in weights.iter().enumerate() {
            current[i] += i64::from(*w);
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        out.push(best as u16);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_interleaves_by_weight() {
        let s = smooth_schedule(&[5, 1, 1]);
        assert_eq!(s, vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(smooth_schedule(&[1, 1]), vec![0, 1]);
    }

    #[test]
    fn weights_hold_on_every_pick_and_groups_fall_through() {
        let pool = Pool {
            groups: vec![
                Group::new(1, vec![10, 11], vec![3, 1]),
                Group::new(2, vec![20], vec![1]),
            ],
        };
        let mut counts = std::collections::HashMap::new();
        for _ in 0..400 {
            *counts.entry(pool.pick(&|_| true).unwrap_or(0)).or_insert(0) += 1;
        }
        assert_eq!(counts[&10], 300);
        assert_eq!(counts[&11], 100);
        // One member of the first group down: the other takes everything.
        assert_eq!(pool.pick(&|m| m != 10), Some(11));
        assert_eq!(pool.pick(&|m| m != 10), Some(11));
        // The whole first group down: the second group.
        assert_eq!(pool.pick(&|m| m >= 20), Some(20));
        assert_eq!(pool.pick(&|_| false), None);
    }
}
