//! Words for the `rnn` kind: lower-cased word tokens, with punctuation and
//! emoji kept as tokens of their own (an "!" or a "🙁" carries sentiment),
//! and a vocabulary built from the training texts.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Id of the padding token (never a word).
pub const PADDING: u32 = 0;
/// Id every word outside the vocabulary maps to.
pub const UNKNOWN: u32 = 1;

/// Lower-cased tokens: runs of letters and digits (with inner apostrophes,
/// so "don't" stays one word), and every other visible character alone.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let inner_apostrophe = (c == '\'' || c == '’')
            && !word.is_empty()
            && chars.peek().is_some_and(|n| n.is_alphanumeric());
        if c.is_alphanumeric() || inner_apostrophe {
            word.extend(c.to_lowercase());
            continue;
        }
        if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        // Variation selectors and joiners belong to the emoji before them.
        let is_modifier = matches!(c, '\u{fe0e}' | '\u{fe0f}' | '\u{200d}');
        if !c.is_whitespace() && !c.is_control() && !is_modifier {
            out.push(c.to_string());
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Token to id: the tokens seen at least `min_count` times in training, most
/// frequent first, after the padding and unknown ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vocabulary {
    /// Tokens by id, starting at id 2.
    words: Vec<String>,
    #[serde(skip)]
    ids: HashMap<String, u32>,
}

impl Vocabulary {
    pub fn build<'a>(
        texts: impl IntoIterator<Item = &'a str>,
        min_count: usize,
        max_size: usize,
    ) -> Vocabulary {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for text in texts {
            for token in tokens(text) {
                *counts.entry(token).or_default() += 1;
            }
        }
        let mut kept: Vec<(String, usize)> = counts
            .into_iter()
            .filter(|(_, count)| *count >= min_count.max(1))
            .collect();
        // Ties by token, so the same texts always give the same ids.
        kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        kept.truncate(max_size.saturating_sub(2));
        Vocabulary::from_words(kept.into_iter().map(|(word, _)| word).collect())
    }

    fn from_words(words: Vec<String>) -> Vocabulary {
        let ids = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as u32 + 2))
            .collect();
        Vocabulary { words, ids }
    }

    /// Rebuilds the lookup after deserialising.
    pub fn indexed(self) -> Vocabulary {
        Vocabulary::from_words(self.words)
    }

    /// Ids including padding and unknown.
    pub fn len(&self) -> usize {
        self.words.len() + 2
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The text's token ids, at most `max_tokens` of them (the start is
    /// kept), and at least one (an empty text is one unknown token).
    pub fn encode(&self, text: &str, max_tokens: usize) -> Vec<u32> {
        let mut ids: Vec<u32> = tokens(text)
            .iter()
            .take(max_tokens.max(1))
            .map(|t| self.ids.get(t).copied().unwrap_or(UNKNOWN))
            .collect();
        if ids.is_empty() {
            ids.push(UNKNOWN);
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lower_cased_and_punctuation_and_emoji_are_tokens() {
        assert_eq!(
            tokens("Don't BUY it!!! 10/10 😡👎🏽 ok…"),
            [
                "don't", "buy", "it", "!", "!", "!", "10", "/", "10", "😡", "👎", "🏽", "ok", "…"
            ]
        );
        assert_eq!(tokens("'quoted' ❤️"), ["'", "quoted", "'", "❤"]);
        assert!(tokens(" \t\n").is_empty());
    }

    #[test]
    fn rare_words_are_unknown_and_ids_follow_frequency() {
        let vocabulary = Vocabulary::build(["good good bad", "good ok", "bad"], 2, 100);
        assert_eq!(vocabulary.len(), 4);
        assert_eq!(
            vocabulary.encode("Good, bad!", 10),
            [2, UNKNOWN, 3, UNKNOWN]
        );
        assert_eq!(vocabulary.encode("good bad good", 2), [2, 3]);
        assert_eq!(vocabulary.encode("", 10), [UNKNOWN]);
        let restored: Vocabulary =
            serde_json::from_str(&serde_json::to_string(&vocabulary).unwrap()).unwrap();
        assert_eq!(restored.indexed(), vocabulary);
    }
}
