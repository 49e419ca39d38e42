//! The ways the jobs hold data out: a seeded share of each class, so that
//! every class is in both parts in its own proportion (validation sets,
//! the text job's `split`, the digits' train/test folders), and a seeded
//! share of all rows where there are no classes (regression, reduction).

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// A seeded `fraction` of each class's indices held out: `(kept, held_out)`,
/// each in ascending order.
pub fn stratified_holdout(classes: &[usize], fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let top = classes.iter().copied().max().map_or(0, |c| c + 1);
    let (mut kept, mut held) = (Vec::new(), Vec::new());
    for class in 0..top {
        let mut members: Vec<usize> = (0..classes.len())
            .filter(|&i| classes[i] == class)
            .collect();
        members.shuffle(&mut rng);
        let n = (members.len() as f64 * fraction).round() as usize;
        held.extend_from_slice(&members[..n]);
        kept.extend_from_slice(&members[n..]);
    }
    kept.sort_unstable();
    held.sort_unstable();
    (kept, held)
}

/// A seeded `fraction` of `n` rows held out, at least one and at most
/// `n - 1` of them: `(kept, held_out)`, each in the order of the shuffle.
pub fn random_holdout(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let held = ((n as f64 * fraction).round() as usize).clamp(1, n.saturating_sub(1).max(1));
    let kept = order.split_off(held);
    (kept, order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_keeps_each_class_share() {
        let classes: Vec<usize> = (0..100).map(|i| usize::from(i % 4 == 0)).collect();
        let (kept, held) = stratified_holdout(&classes, 0.2, 3);
        assert_eq!(kept.len() + held.len(), 100);
        assert_eq!(held.iter().filter(|&&i| classes[i] == 1).count(), 5);
        assert_eq!(held.iter().filter(|&&i| classes[i] == 0).count(), 15);
    }
}
