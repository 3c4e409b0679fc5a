//! Picking one of a fixed list with the producer's seeded `SmallRng`. The
//! generator and `corrupt` take turns drawing from the same `SmallRng`, so
//! the helper lives apart from both rather than one importing the other.

use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;

/// One of `items`, uniformly.
pub(crate) fn pick<T: Copy>(rng: &mut SmallRng, items: &[T]) -> T {
    *items.choose(rng).expect("choice lists are not empty")
}
