//! Labelled text in: CSV with a header (text and label columns chosen by
//! name; quoted fields and embedded newlines handled), TSV without a header
//! (`text<TAB>label`), and JSON Lines (an object per line). The format
//! follows the file's extension: `.csv`; `.tsv` or `.txt`; `.jsonl`,
//! `.ndjson` or `.json`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use tidewatch_stream::source::file::{LineLimited, csv_reader};

/// One row: its text, its label when the file has one, and where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub text: String,
    pub label: Option<String>,
    /// 1-based line of the row's start.
    pub line: u64,
}

/// Column or field names, and what to do with bad rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSpec {
    pub text_field: String,
    pub label_field: String,
    /// Every row must carry a label (training, evaluation).
    pub labels_required: bool,
    /// Skip and count bad rows instead of stopping at the first.
    pub skip_bad_rows: bool,
}

impl ReadSpec {
    pub fn new(labels_required: bool, skip_bad_rows: bool) -> ReadSpec {
        ReadSpec {
            text_field: "text".into(),
            label_field: "label".into(),
            labels_required,
            skip_bad_rows,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TextDataError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}:{line}: {message} (--skip-bad-rows skips such rows)")]
    BadRow {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}: unknown extension; use .csv, .tsv, .txt, .jsonl, .ndjson or .json")]
    UnknownFormat { path: PathBuf },
    #[error("{path}: no column named {column:?} (columns: {columns})")]
    MissingColumn {
        path: PathBuf,
        column: String,
        columns: String,
    },
    #[error("{0}: no usable rows")]
    Empty(PathBuf),
    #[error("{path}: only one label ({label}); a classifier needs at least two")]
    OneClass { path: PathBuf, label: String },
}

/// The rows of a file and how many were skipped.
#[derive(Debug, Clone, Default)]
pub struct TextSet {
    pub examples: Vec<Example>,
    pub skipped: usize,
}

impl TextSet {
    /// The distinct labels, sorted: a model's classes.
    pub fn labels(&self) -> Vec<String> {
        let mut labels: Vec<String> = self
            .examples
            .iter()
            .filter_map(|e| e.label.clone())
            .collect();
        labels.sort();
        labels.dedup();
        labels
    }

    /// Each example's label as its index in `labels` (sorted, as
    /// [`TextSet::labels`] gives them) of a labelled set.
    pub fn class_indices(&self, labels: &[String]) -> Vec<usize> {
        self.examples
            .iter()
            .map(|e| {
                labels
                    .binary_search(e.label.as_ref().expect("labelled set"))
                    .expect("known label")
            })
            .collect()
    }

    /// Refuses a labelled set with fewer than two labels.
    pub fn require_classes(&self, path: &Path) -> Result<Vec<String>, TextDataError> {
        let labels = self.labels();
        if labels.len() < 2 {
            return Err(TextDataError::OneClass {
                path: path.to_owned(),
                label: labels.first().cloned().unwrap_or_default(),
            });
        }
        Ok(labels)
    }
}

/// Reads every file in `paths` into one set.
pub fn read_files(paths: &[PathBuf], spec: &ReadSpec) -> Result<TextSet, TextDataError> {
    let mut set = TextSet::default();
    for path in paths {
        let one = read_file(path, spec)?;
        set.examples.extend(one.examples);
        set.skipped += one.skipped;
    }
    Ok(set)
}

/// Why a row that is not text is bad.
const NOT_UTF8: &str = "not UTF-8";

impl ReadSpec {
    /// What is wrong with a row's text and label, if anything.
    fn problem(&self, text: &Option<String>, label: &Option<String>) -> Option<String> {
        match (text, label) {
            (None, _) => Some(format!(
                "no {:?} field (or not a JSON object)",
                self.text_field
            )),
            (Some(t), _) if t.trim().is_empty() => Some("empty text".to_owned()),
            (_, None) if self.labels_required => Some(format!("no label ({:?})", self.label_field)),
            (_, Some(l)) if self.labels_required && l.trim().is_empty() => {
                Some("empty label".to_owned())
            }
            _ => None,
        }
    }
}

pub fn read_file(path: &Path, spec: &ReadSpec) -> Result<TextSet, TextDataError> {
    let mut examples = Vec::new();
    let skipped = visit_file(path, spec, |example| {
        examples.push(example);
        Ok::<_, TextDataError>(())
    })?;
    Ok(TextSet { examples, skipped })
}

/// Calls `row` with each good row of `path` as it is read, in file order;
/// returns how many bad rows were skipped. A file without a good row is an
/// error.
pub fn visit_file<E: From<TextDataError>>(
    path: &Path,
    spec: &ReadSpec,
    mut row: impl FnMut(Example) -> Result<(), E>,
) -> Result<usize, E> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let io = |e: std::io::Error| TextDataError::Io {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let file = LineLimited::new(File::open(path).map_err(io)?);
    let (mut accepted, mut skipped) = (0usize, 0usize);
    // A row's text and label, or why it could not be read; `lines` is its
    // line span: a CSV row with a quote left open runs on over the rows
    // after it, which are lost with it.
    let mut accept = |fields: Result<(Option<String>, Option<String>), &str>,
                      lines: std::ops::RangeInclusive<u64>|
     -> Result<(), E> {
        let line = *lines.start();
        let (problem, text, label) = match fields {
            Ok((text, label)) => (spec.problem(&text, &label), text, label),
            Err(unreadable) => (Some(unreadable.to_owned()), None, None),
        };
        match problem {
            None => {
                accepted += 1;
                row(Example {
                    text: text.unwrap_or_default(),
                    label: label.map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()),
                    line,
                })
            }
            Some(_) if spec.skip_bad_rows => {
                skipped += (lines.end() - line + 1) as usize;
                Ok(())
            }
            Some(message) if lines.end() > lines.start() => Err(TextDataError::BadRow {
                path: path.to_owned(),
                line,
                message: format!(
                    "{message} (the row runs on to line {}: is a quote left open on line {line}?)",
                    lines.end()
                ),
            }
            .into()),
            Some(message) => Err(TextDataError::BadRow {
                path: path.to_owned(),
                line,
                message,
            }
            .into()),
        }
    };
    match extension.as_str() {
        "csv" => {
            let mut reader = csv_reader(b',')
                .flexible(true)
                .from_reader(BufReader::new(file));
            let headers = reader
                .headers()
                .map_err(|e| io(std::io::Error::other(e)))?
                .clone();
            let column = |name: &str| {
                headers
                    .iter()
                    .position(|h| h == name)
                    .ok_or_else(|| TextDataError::MissingColumn {
                        path: path.to_owned(),
                        column: name.to_owned(),
                        columns: headers.iter().collect::<Vec<_>>().join(", "),
                    })
            };
            let text_column = column(&spec.text_field)?;
            let label_column = match column(&spec.label_field) {
                Ok(c) => Some(c),
                Err(e) if spec.labels_required => return Err(e.into()),
                Err(_) => None,
            };
            let mut record = csv::ByteRecord::new();
            while reader
                .read_byte_record(&mut record)
                .map_err(|e| TextDataError::BadRow {
                    path: path.to_owned(),
                    line: e.position().map_or(0, |p| p.line()),
                    message: e.to_string(),
                })?
            {
                let line = record.position().map_or(0, |p| p.line());
                // The reader now stands at the start of the next row.
                let last_line = (reader.position().line() - 1).max(line);
                let field = |column: Option<usize>| {
                    column
                        .and_then(|c| record.get(c))
                        .map(|bytes| String::from_utf8(bytes.to_vec()))
                        .transpose()
                };
                let fields = match (field(Some(text_column)), field(label_column)) {
                    (Ok(text), Ok(label)) => Ok((text, label)),
                    _ => Err(NOT_UTF8),
                };
                accept(fields, line..=last_line)?;
            }
        }
        "tsv" | "txt" => {
            for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
                let number = i as u64 + 1;
                let Ok(line) = String::from_utf8(line.map_err(io)?) else {
                    accept(Err(NOT_UTF8), number..=number)?;
                    continue;
                };
                let line = line.trim_end_matches(['\r', '\n']);
                if line.trim().is_empty() {
                    continue;
                }
                let (text, label) = match line.rsplit_once('\t') {
                    Some((text, label)) => (text.trim().to_owned(), Some(label.to_owned())),
                    None => (line.trim().to_owned(), None),
                };
                accept(Ok((Some(text), label)), number..=number)?;
            }
        }
        "jsonl" | "ndjson" | "json" => {
            for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
                let number = i as u64 + 1;
                let Ok(line) = String::from_utf8(line.map_err(io)?) else {
                    accept(Err(NOT_UTF8), number..=number)?;
                    continue;
                };
                if line.trim().is_empty() {
                    continue;
                }
                let value: serde_json::Value = match serde_json::from_str(&line) {
                    Ok(v) => v,
                    // Not an object: read as a row without text, which
                    // `accept` skips or refuses like any bad row.
                    Err(_) => serde_json::Value::Null,
                };
                let field = |name: &str| match value.get(name) {
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    Some(serde_json::Value::Null) | None => None,
                    Some(other) => Some(other.to_string()),
                };
                accept(
                    Ok((field(&spec.text_field), field(&spec.label_field))),
                    number..=number,
                )?;
            }
        }
        _ => {
            return Err(TextDataError::UnknownFormat {
                path: path.to_owned(),
            }
            .into());
        }
    }
    if accepted == 0 {
        return Err(TextDataError::Empty(path.to_owned()).into());
    }
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(name: &str, content: &str, spec: &ReadSpec) -> Result<TextSet, TextDataError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        read_file(&path, spec)
    }

    #[test]
    fn csv_quotes_and_embedded_newlines() {
        let spec = ReadSpec {
            text_field: "comment".into(),
            label_field: "mood".into(),
            ..ReadSpec::new(true, false)
        };
        let set = read(
            "r.csv",
            "id,comment,mood\n1,\"Great, really\nloved it\",satisfied\n2,meh,neutral\n",
            &spec,
        )
        .unwrap();
        assert_eq!(set.examples[0].text, "Great, really\nloved it");
        assert_eq!(set.examples[1].line, 4);
        assert_eq!(set.labels(), vec!["neutral", "satisfied"]);
        let error = read("r.csv", "id,text\n1,x\n", &spec)
            .unwrap_err()
            .to_string();
        assert!(error.contains("no column named \"comment\""), "{error}");
    }

    #[test]
    fn bad_rows_name_their_line_or_are_skipped() {
        let strict = ReadSpec::new(true, false);
        let error = read("r.tsv", "good\t1\n\t0\nfine\t0\n", &strict)
            .unwrap_err()
            .to_string();
        assert!(error.contains("r.tsv:2: empty text"), "{error}");
        let error = read(
            "r.jsonl",
            "{\"text\":\"a\",\"label\":\"x\"}\n{\"text\":\"b\"}\n",
            &strict,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains(":2: no label"), "{error}");
        let skipping = ReadSpec::new(true, true);
        let set = read(
            "r.jsonl",
            "{\"text\":\"a\",\"label\":\"x\"}\nnot json\n{\"text\":\"b\"}\n",
            &skipping,
        )
        .unwrap();
        assert_eq!((set.examples.len(), set.skipped), (1, 2));
        let one = read("r.tsv", "a\tx\nb\tx\n", &strict).unwrap();
        let error = one
            .require_classes(Path::new("r.tsv"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("only one label (x)"), "{error}");
    }

    #[test]
    fn unlabelled_rows_are_fine_for_prediction() {
        let set = read(
            "r.tsv",
            "just text\nmore text\n",
            &ReadSpec::new(false, false),
        )
        .unwrap();
        assert_eq!(set.examples[1].label, None);
    }
}
