//! What every classifier job shares: ranking class probabilities and
//! scoring predictions against labels (accuracy, per-class precision,
//! recall and F1, macro-F1, the confusion matrix).

use serde::Serialize;

/// One class and its probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked {
    pub class: String,
    pub probability: f32,
}

/// The `k` most probable classes, most probable first.
pub fn top_k(classes: &[String], probabilities: &[f32], k: usize) -> Vec<Ranked> {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| {
        probabilities[b]
            .total_cmp(&probabilities[a])
            .then(a.cmp(&b))
    });
    order
        .into_iter()
        .take(k.max(1))
        .map(|i| Ranked {
            class: classes[i].clone(),
            probability: probabilities[i],
        })
        .collect()
}

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassMetrics {
    pub class: String,
    pub support: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// What `image eval` reports; saved as JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Items scored (images, texts).
    pub items: usize,
    pub skipped: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub per_class: Vec<ClassMetrics>,
    pub classes: Vec<String>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

impl Evaluation {
    pub fn from_confusion(
        classes: Vec<String>,
        confusion: Vec<Vec<usize>>,
        skipped: usize,
    ) -> Evaluation {
        let n = classes.len();
        let items: usize = confusion.iter().flatten().sum();
        let hits: usize = (0..n).map(|i| confusion[i][i]).sum();
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let per_class: Vec<ClassMetrics> = (0..n)
            .map(|c| {
                let predicted: usize = (0..n).map(|t| confusion[t][c]).sum();
                let support: usize = confusion[c].iter().sum();
                let precision = ratio(confusion[c][c], predicted);
                let recall = ratio(confusion[c][c], support);
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassMetrics {
                    class: classes[c].clone(),
                    support,
                    precision,
                    recall,
                    f1,
                }
            })
            .collect();
        let macro_f1 = per_class.iter().map(|c| c.f1).sum::<f64>() / n.max(1) as f64;
        Evaluation {
            items,
            skipped,
            accuracy: ratio(hits, items),
            macro_f1,
            per_class,
            classes,
            confusion,
        }
    }

    /// The per-class metrics and the confusion matrix as text tables.
    pub fn table(&self) -> String {
        let name_width = self
            .classes
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(5)
            .max(5);
        let mut text = format!(
            "accuracy {:.4}  macro-F1 {:.4}  ({} scored{})\n\n{:>name_width$}  precision  recall      F1  support\n",
            self.accuracy,
            self.macro_f1,
            self.items,
            if self.skipped > 0 {
                format!(", {} unreadable skipped", self.skipped)
            } else {
                String::new()
            },
            "class",
        );
        for c in &self.per_class {
            text += &format!(
                "{:>name_width$}  {:>9.4}  {:>6.4}  {:>6.4}  {:>7}\n",
                c.class, c.precision, c.recall, c.f1, c.support
            );
        }
        let cell = self
            .confusion
            .iter()
            .flatten()
            .map(|v| v.to_string().len())
            .max()
            .unwrap_or(1)
            .max(self.classes.iter().map(String::len).max().unwrap_or(1));
        text += &format!(
            "\nconfusion (rows: true class, columns: predicted)\n{:>name_width$}",
            ""
        );
        for class in &self.classes {
            text += &format!(" {class:>cell$}");
        }
        text += "\n";
        for (class, row) in self.classes.iter().zip(&self.confusion) {
            text += &format!("{class:>name_width$}");
            for count in row {
                text += &format!(" {count:>cell$}");
            }
            text += "\n";
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_from_a_hand_counted_confusion_matrix() {
        let classes = vec!["a".to_owned(), "b".to_owned()];
        // 3 a's: 2 right, 1 called b; 2 b's: both right.
        let e = Evaluation::from_confusion(classes, vec![vec![2, 1], vec![0, 2]], 0);
        assert_eq!(e.items, 5);
        assert!((e.accuracy - 0.8).abs() < 1e-12);
        assert!((e.per_class[0].precision - 1.0).abs() < 1e-12);
        assert!((e.per_class[0].recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((e.per_class[1].precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((e.per_class[1].f1 - 0.8).abs() < 1e-12);
        assert!(e.table().contains("confusion"));
    }

    #[test]
    fn top_k_ranks_by_probability() {
        let classes = vec!["x".to_owned(), "y".to_owned(), "z".to_owned()];
        let ranked = top_k(&classes, &[0.2, 0.5, 0.3], 2);
        let names: Vec<&str> = ranked.iter().map(|r| r.class.as_str()).collect();
        assert_eq!(names, vec!["y", "z"]);
    }
}
