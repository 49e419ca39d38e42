//! The `baseline` kind: TF-IDF features over word n-grams and multinomial
//! logistic regression. Fast, and the reference every neural kind has to
//! beat. The features stay sparse (`sprs`) and the regression is solved on
//! them ([`sparse_logistic`]): dense rows as wide as the vocabulary made
//! training on 11,712 tweets take over 17 minutes.
//!
//! Term counts come from linfa-preprocessing's `CountVectorizer`; the
//! inverse document frequencies are computed here from the training texts
//! and stored, because linfa's `FittedTfIdfVectorizer::transform` recomputes
//! them from whatever batch it is given, which would make a text's features
//! (and its prediction) depend on the other texts in its batch.

use linfa_preprocessing::CountVectorizer;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};
use sprs::{CsMat, TriMat};

use crate::text::sparse_logistic;

/// Settings of the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineConfig {
    /// Longest word n-gram used as a feature.
    #[serde(default = "default_max_ngram")]
    pub max_ngram: usize,
    /// Vocabulary bound: the most frequent n-grams are kept.
    #[serde(default = "default_max_features")]
    pub max_features: usize,
    /// L2 penalty of the logistic regression.
    #[serde(default = "default_l2_penalty")]
    pub l2_penalty: f64,
    #[serde(default = "default_max_iterations")]
    pub max_iterations: u64,
}

fn default_max_ngram() -> usize {
    2
}
fn default_max_features() -> usize {
    20_000
}
fn default_l2_penalty() -> f64 {
    1e-3
}
fn default_max_iterations() -> u64 {
    300
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            max_ngram: default_max_ngram(),
            max_features: default_max_features(),
            l2_penalty: default_l2_penalty(),
            max_iterations: default_max_iterations(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineModel {
    vectorizer: CountVectorizer,
    /// Smoothed inverse document frequency per vocabulary entry.
    idf: Vec<f64>,
    /// [vocabulary, classes], columns in class-index order.
    weights: Array2<f64>,
    /// [classes].
    intercepts: Array1<f64>,
}

impl BaselineModel {
    /// Fits on `texts` with class indices `labels` (each in `0..classes`).
    pub fn fit(
        texts: &[String],
        labels: &[usize],
        classes: usize,
        config: &BaselineConfig,
    ) -> Result<BaselineModel, String> {
        let documents = Array1::from(texts.to_vec());
        let vectorizer = CountVectorizer::params()
            .n_gram_range(1, config.max_ngram.max(1))
            .max_features(Some(config.max_features))
            .fit(&documents)
            .map_err(|e| format!("vocabulary: {e}"))?;
        let counts = vectorizer
            .transform(&documents)
            .map_err(|e| e.to_string())?;
        let mut document_frequency = vec![0usize; vectorizer.nentries()];
        for row in counts.outer_iterator() {
            for (column, _) in row.iter() {
                document_frequency[column] += 1;
            }
        }
        let n = texts.len() as f64;
        let idf: Vec<f64> = document_frequency
            .iter()
            .map(|&df| ((1.0 + n) / (1.0 + df as f64)).ln() + 1.0)
            .collect();
        let features = tf_idf(&vectorizer, &idf, texts)?;
        let (weights, intercepts) = sparse_logistic::fit(
            &features,
            labels,
            classes,
            config.l2_penalty,
            config.max_iterations,
        )?;
        Ok(BaselineModel {
            vectorizer,
            idf,
            weights,
            intercepts,
        })
    }

    /// Class probabilities per text: [texts, classes], in class-index order.
    pub fn probabilities(&self, texts: &[String]) -> Result<Array2<f64>, String> {
        let features = tf_idf(&self.vectorizer, &self.idf, texts)?;
        Ok(sparse_logistic::probabilities(
            &features,
            &self.weights,
            &self.intercepts,
        ))
    }
}

/// Multinomial logistic regression of dense `features` `[examples,
/// width]` (sentence embeddings) on class indices `labels` (each in
/// `0..classes`): the weights `[width, classes]` and intercepts
/// `[classes]`, columns in class-index order, so that the class
/// probabilities are `softmax(features · weights + intercepts)`.
pub fn fit_logistic(
    features: Array2<f64>,
    labels: &[usize],
    classes: usize,
    l2_penalty: f64,
    max_iterations: u64,
) -> Result<(Array2<f64>, Array1<f64>), String> {
    let features = CsMat::csr_from_dense(features.view(), 0.0);
    sparse_logistic::fit(&features, labels, classes, l2_penalty, max_iterations)
}

/// L2-normalised TF-IDF rows: [texts, vocabulary], sparse (a row holds
/// only its text's n-grams, so the work grows with the text, not with the
/// vocabulary).
fn tf_idf(
    vectorizer: &CountVectorizer,
    idf: &[f64],
    texts: &[String],
) -> Result<CsMat<f64>, String> {
    let counts = vectorizer
        .transform(&Array1::from(texts.to_vec()))
        .map_err(|e| e.to_string())?;
    let mut features = TriMat::new((texts.len(), idf.len()));
    for (r, row) in counts.outer_iterator().enumerate() {
        let weighted: Vec<(usize, f64)> = row
            .iter()
            .map(|(column, &count)| (column, count as f64 * idf[column]))
            .collect();
        let norm = weighted.iter().map(|(_, v)| v * v).sum::<f64>().sqrt();
        for (column, value) in weighted {
            features.add_triplet(r, column, if norm > 0.0 { value / norm } else { value });
        }
    }
    Ok(features.to_csr())
}
