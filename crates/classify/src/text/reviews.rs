//! Generated product reviews in three classes (satisfied, neutral,
//! dissatisfied) for tests and benches that nobody has to download.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

/// `count` reviews as CSV (`review,sentiment`), built from templates: the label decides the opinion words, the
/// rest is shared filler, so only the opinion tells the classes apart.
pub fn reviews_csv(count: usize, seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let items = [
        "kettle",
        "phone case",
        "lamp",
        "blender",
        "backpack",
        "charger",
    ];
    let opinion = [
        (
            "satisfied",
            [
                "love it",
                "works perfectly",
                "excellent quality",
                "really happy with",
                "great value",
            ],
        ),
        (
            "neutral",
            [
                "it is okay",
                "does the job",
                "average at best",
                "nothing special about",
                "fine I guess",
            ],
        ),
        (
            "dissatisfied",
            [
                "broke after a week",
                "terrible quality",
                "very disappointed with",
                "waste of money",
                "stopped working",
            ],
        ),
    ];
    let mut text = String::from("review,sentiment\n");
    for _ in 0..count {
        let (label, words) = opinion[rng.random_range(0..3)];
        let sentence = format!(
            "\"The {} arrived on {}, {} it. {}!\"",
            items.choose(&mut rng).unwrap(),
            ["Monday", "time", "a rainy day"].choose(&mut rng).unwrap(),
            words.choose(&mut rng).unwrap(),
            ["Thanks", "Well", "So"].choose(&mut rng).unwrap(),
        );
        text += &format!("{sentence},{label}\n");
    }
    text
}
