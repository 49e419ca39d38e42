//! File replay: CSV (any of `,` `;` tab, sniffed from the header) and JSON
//! Lines, decoded row by row into records in file order.
//!
//! Every problem is an [`InputError`] naming file, line and column. With
//! [`BadRows::Skip`] row-level problems are counted and skipped instead;
//! file-level ones (unreadable, empty, a column the schema needs is absent)
//! always stop the replay.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::decode::{Decoder, FieldError, FieldErrorKind, FieldValue, Fields, Record, excerpt};
use super::schema::Schema;

/// The layout of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv { delimiter: u8 },
    JsonLines,
}

impl FileFormat {
    /// JSON Lines for `.jsonl`, `.ndjson` and `.json`; otherwise CSV with the
    /// delimiter that occurs most in the header line.
    pub fn detect(path: &Path) -> Result<FileFormat, InputError> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ["jsonl", "ndjson", "json"].contains(&ext.to_ascii_lowercase().as_str()) {
            return Ok(FileFormat::JsonLines);
        }
        let mut header = Vec::new();
        BufReader::new(open(path)?)
            .read_until(b'\n', &mut header)
            .map_err(|e| InputError::file(path, InputErrorKind::Io(e.to_string())))?;
        let delimiter = [b',', b';', b'\t']
            .into_iter()
            .max_by_key(|d| header.iter().filter(|b| *b == d).count())
            .unwrap_or(b',');
        Ok(FileFormat::Csv { delimiter })
    }
}

/// What to do with a row that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BadRows {
    #[default]
    Fail,
    Skip,
}

/// Whether a key's timestamps may go backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeOrder {
    /// A timestamp earlier than the key's previous one is bad input.
    #[default]
    Strict,
    /// Rows are taken in file order whatever their times (benchmarks whose
    /// labels count rows, such as NAB, where one series repeats an hour).
    FileOrder,
}

/// How a file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadOptions {
    pub bad_rows: BadRows,
    pub time_order: TimeOrder,
}

impl ReadOptions {
    pub fn skipping_bad_rows(skip: bool) -> ReadOptions {
        ReadOptions {
            bad_rows: if skip { BadRows::Skip } else { BadRows::Fail },
            time_order: TimeOrder::Strict,
        }
    }
}

/// A problem with an input file, located as precisely as it can be.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{}{}: {kind}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), column.as_ref().map(|c| format!(": column {c:?}")).unwrap_or_default())]
pub struct InputError {
    pub path: PathBuf,
    /// 1-based line number, when the problem is on one line.
    pub line: Option<u64>,
    pub column: Option<String>,
    pub kind: InputErrorKind,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputErrorKind {
    #[error("cannot read: {0}")]
    Io(String),
    #[error("the file has no data rows")]
    Empty,
    #[error("every row was bad and skipped: nothing to work on ({rows} rows{})", first.as_ref().map(|e| format!("; the first: {e}")).unwrap_or_default())]
    EveryRowSkipped {
        rows: u64,
        first: Option<Box<InputError>>,
    },
    #[error("not UTF-8")]
    NotUtf8,
    #[error("not in the header (the header has: {0})")]
    UnknownColumn(String),
    #[error("wrong column count: expected {expected}, found {found}")]
    ColumnCount { expected: u64, found: u64 },
    #[error("not a JSON object: {0}")]
    NotJson(String),
    #[error("{0}")]
    Field(FieldErrorKind),
    #[error("timestamp goes backwards for key {key:?}: {current_ms} ms after {previous_ms} ms")]
    TimestampBackwards {
        key: String,
        previous_ms: i64,
        current_ms: i64,
    },
}

impl InputErrorKind {
    /// Short stable reason, for the skipped-rows summary.
    pub fn reason(&self) -> &'static str {
        match self {
            InputErrorKind::Io(_) => "io",
            InputErrorKind::Empty => "empty_file",
            InputErrorKind::EveryRowSkipped { .. } => "every_row_skipped",
            InputErrorKind::NotUtf8 => "not_utf8",
            InputErrorKind::UnknownColumn(_) => "unknown_column",
            InputErrorKind::ColumnCount { .. } => "column_count",
            InputErrorKind::NotJson(_) => "not_json",
            InputErrorKind::Field(kind) => FieldError {
                column: String::new(),
                kind: kind.clone(),
            }
            .reason(),
            InputErrorKind::TimestampBackwards { .. } => "timestamp_backwards",
        }
    }
}

impl InputError {
    fn file(path: &Path, kind: InputErrorKind) -> InputError {
        InputError {
            path: path.to_owned(),
            line: None,
            column: None,
            kind,
        }
    }

    fn at(path: &Path, line: u64, column: Option<String>, kind: InputErrorKind) -> InputError {
        InputError {
            path: path.to_owned(),
            line: Some(line),
            column,
            kind,
        }
    }

    fn is_row_level(&self) -> bool {
        !matches!(
            self.kind,
            InputErrorKind::Io(_) | InputErrorKind::Empty | InputErrorKind::UnknownColumn(_)
        )
    }
}

fn open(path: &Path) -> Result<LineLimited<File>, InputError> {
    File::open(path)
        .map(LineLimited::new)
        .map_err(|e| InputError::file(path, InputErrorKind::Io(e.to_string())))
}

/// Longest line an input file may have: readers hold a whole line (a CSV
/// row, a JSON object) in memory, and a file of one endless line would
/// take all of it.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// A reader that fails, naming the line, once a line runs past
/// [`MAX_LINE_BYTES`] without ending.
#[derive(Debug)]
pub struct LineLimited<R> {
    inner: R,
    /// 1-based number of the line being read, and its bytes so far.
    line: u64,
    line_bytes: usize,
}

impl<R> LineLimited<R> {
    pub fn new(inner: R) -> LineLimited<R> {
        LineLimited {
            inner,
            line: 1,
            line_bytes: 0,
        }
    }
}

impl<R: Read> Read for LineLimited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        for chunk in buf[..read].split_inclusive(|&b| b == b'\n') {
            self.line_bytes += chunk.len();
            if self.line_bytes > MAX_LINE_BYTES {
                return Err(std::io::Error::other(format!(
                    "line {} is longer than {} MiB",
                    self.line,
                    MAX_LINE_BYTES >> 20
                )));
            }
            if chunk.ends_with(b"\n") {
                self.line += 1;
                self.line_bytes = 0;
            }
        }
        Ok(read)
    }
}

/// A decoded row and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRow {
    /// 1-based line of the row in the file.
    pub line: u64,
    pub record: Record,
}

/// Rows skipped under [`BadRows::Skip`], by reason.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SkippedRows {
    pub by_reason: BTreeMap<&'static str, u64>,
    /// The first skipped row's error, to show the user an example.
    pub first: Option<InputError>,
}

impl SkippedRows {
    pub fn total(&self) -> u64 {
        self.by_reason.values().sum()
    }

    fn count(&mut self, error: InputError) {
        *self.by_reason.entry(error.kind.reason()).or_default() += 1;
        self.first.get_or_insert(error);
    }
}

impl std::fmt::Display for SkippedRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .by_reason
            .iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect();
        write!(
            f,
            "{} bad rows skipped ({})",
            self.total(),
            parts.join(", ")
        )
    }
}

enum Rows {
    Csv {
        reader: csv::Reader<BufReader<LineLimited<File>>>,
        columns: HashMap<String, usize>,
        record: csv::StringRecord,
    },
    JsonLines {
        lines: std::io::Lines<BufReader<LineLimited<File>>>,
        line: u64,
    },
}

/// Replays a file as records, in file order.
pub struct FileSource {
    path: PathBuf,
    decoder: Decoder,
    rows: Rows,
    options: ReadOptions,
    skipped: SkippedRows,
    last_timestamp_ms: HashMap<String, i64>,
    rows_read: u64,
    done: bool,
}

impl FileSource {
    pub fn open(
        path: &Path,
        schema: Schema,
        options: ReadOptions,
    ) -> Result<FileSource, InputError> {
        let rows = match FileFormat::detect(path)? {
            FileFormat::JsonLines => Rows::JsonLines {
                lines: BufReader::new(open(path)?).lines(),
                line: 0,
            },
            FileFormat::Csv { delimiter } => {
                let mut reader = csv_reader(delimiter).from_reader(BufReader::new(open(path)?));
                let header = reader
                    .headers()
                    .map_err(|e| InputError::file(path, InputErrorKind::Io(e.to_string())))?
                    .clone();
                if header.iter().all(|h| h.trim().is_empty()) {
                    return Err(InputError::file(path, InputErrorKind::Empty));
                }
                let columns: HashMap<String, usize> = header
                    .iter()
                    .enumerate()
                    .map(|(i, name)| (name.trim().to_owned(), i))
                    .collect();
                if let Some(missing) = schema
                    .required_fields()
                    .into_iter()
                    .find(|f| !columns.contains_key(*f))
                {
                    let have = header.iter().collect::<Vec<_>>().join(", ");
                    return Err(InputError::at(
                        path,
                        1,
                        Some(missing.to_owned()),
                        InputErrorKind::UnknownColumn(excerpt(&have)),
                    ));
                }
                Rows::Csv {
                    reader,
                    columns,
                    record: csv::StringRecord::new(),
                }
            }
        };
        Ok(FileSource {
            path: path.to_owned(),
            decoder: Decoder::new(schema),
            rows,
            options,
            skipped: SkippedRows::default(),
            last_timestamp_ms: HashMap::new(),
            rows_read: 0,
            done: false,
        })
    }

    /// Rows skipped so far under [`BadRows::Skip`].
    pub fn skipped(&self) -> &SkippedRows {
        &self.skipped
    }

    /// Reads the whole file, keeping every good row.
    pub fn read_all(mut self) -> Result<(Vec<SourceRow>, SkippedRows), InputError> {
        let rows = self.by_ref().collect::<Result<Vec<_>, _>>()?;
        Ok((rows, self.skipped))
    }

    fn next_row(&mut self) -> Option<Result<SourceRow, InputError>> {
        let path = &self.path;
        let (line, decoded) = match &mut self.rows {
            Rows::Csv {
                reader,
                columns,
                record,
            } => {
                match reader.read_record(record) {
                    Ok(false) => return None,
                    Err(e) => return Some(Err(csv_error(path, e))),
                    Ok(true) => {}
                }
                let line = record.position().map_or(0, |p| p.line());
                let row = CsvRow { columns, record };
                (line, self.decoder.decode(&row))
            }
            Rows::JsonLines { lines, line } => loop {
                *line += 1;
                let text = match lines.next()? {
                    Ok(text) => text,
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        return Some(Err(InputError::at(
                            path,
                            *line,
                            None,
                            InputErrorKind::NotUtf8,
                        )));
                    }
                    Err(e) => {
                        return Some(Err(InputError::file(
                            path,
                            InputErrorKind::Io(e.to_string()),
                        )));
                    }
                };
                if text.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(serde_json::Value::Object(object)) => {
                        break (*line, self.decoder.decode(&object));
                    }
                    Ok(other) => {
                        let kind = InputErrorKind::NotJson(format!("found {}", json_kind(&other)));
                        return Some(Err(InputError::at(path, *line, None, kind)));
                    }
                    Err(e) => {
                        return Some(Err(InputError::at(
                            path,
                            *line,
                            None,
                            InputErrorKind::NotJson(e.to_string()),
                        )));
                    }
                }
            },
        };
        let record = match decoded {
            Ok(record) => record,
            Err(e) => {
                return Some(Err(InputError::at(
                    path,
                    line,
                    Some(e.column),
                    InputErrorKind::Field(e.kind),
                )));
            }
        };
        let previous = self.last_timestamp_ms.get(&record.key).copied();
        let backwards = self.options.time_order == TimeOrder::Strict;
        if let Some(previous_ms) = previous.filter(|p| backwards && *p > record.timestamp_ms) {
            let kind = InputErrorKind::TimestampBackwards {
                key: record.key.clone(),
                previous_ms,
                current_ms: record.timestamp_ms,
            };
            let column = Some(self.decoder.schema().timestamp_field.clone());
            return Some(Err(InputError::at(path, line, column, kind)));
        }
        self.last_timestamp_ms
            .insert(record.key.clone(), record.timestamp_ms);
        Some(Ok(SourceRow { line, record }))
    }
}

impl Iterator for FileSource {
    type Item = Result<SourceRow, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            match self.next_row() {
                None => {
                    self.done = true;
                    if self.rows_read == 0 {
                        return Some(Err(InputError::file(&self.path, InputErrorKind::Empty)));
                    }
                    if self.skipped.total() == self.rows_read {
                        let kind = InputErrorKind::EveryRowSkipped {
                            rows: self.rows_read,
                            first: self.skipped.first.clone().map(Box::new),
                        };
                        return Some(Err(InputError::file(&self.path, kind)));
                    }
                    return None;
                }
                Some(Ok(row)) => {
                    self.rows_read += 1;
                    return Some(Ok(row));
                }
                Some(Err(e)) if self.options.bad_rows == BadRows::Skip && e.is_row_level() => {
                    self.rows_read += 1;
                    self.skipped.count(e);
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// How every CSV file is read: rows end at `\n`, and the `\r` of a CRLF
/// file is trimmed with the rest of the whitespace around each field. (The
/// csv crate's own CRLF handling numbers each row with the line before.)
pub fn csv_reader(delimiter: u8) -> csv::ReaderBuilder {
    let mut builder = csv::ReaderBuilder::new();
    builder
        .delimiter(delimiter)
        .terminator(csv::Terminator::Any(b'\n'))
        .trim(csv::Trim::All);
    builder
}

fn csv_error(path: &Path, error: csv::Error) -> InputError {
    let line = error.position().map(|p| p.line());
    let kind = match error.into_kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => InputErrorKind::ColumnCount {
            expected: expected_len,
            found: len,
        },
        csv::ErrorKind::Utf8 { .. } => InputErrorKind::NotUtf8,
        csv::ErrorKind::Io(e) => InputErrorKind::Io(e.to_string()),
        other => InputErrorKind::Io(format!("{other:?}")),
    };
    InputError {
        path: path.to_owned(),
        line,
        column: None,
        kind,
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Null => "null",
        serde_json::Value::Object(_) => "an object",
    }
}

struct CsvRow<'a> {
    columns: &'a HashMap<String, usize>,
    record: &'a csv::StringRecord,
}

impl Fields for CsvRow<'_> {
    fn get(&self, name: &str) -> Option<FieldValue<'_>> {
        let cell = self.record.get(*self.columns.get(name)?)?;
        Some(if cell.trim().is_empty() {
            FieldValue::Null
        } else {
            FieldValue::Text(cell)
        })
    }
}

/// Number of data rows in a file (CSV records after the header, non-empty
/// JSON lines), for warm-up lengths given as a fraction of the series.
/// `text` as one CSV field: quoted (quotes doubled) when it holds a comma,
/// a quote or a line break; as it is otherwise. Every CSV tidewatch writes
/// goes through it.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

pub fn count_rows(path: &Path) -> Result<u64, InputError> {
    // Bytes, not text: a line that is not UTF-8 is the reader's to report,
    // with its number.
    let lines = BufReader::new(open(path)?).split(b'\n');
    let mut count = 0u64;
    for line in lines {
        let line = line.map_err(|e| InputError::file(path, InputErrorKind::Io(e.to_string())))?;
        count += u64::from(!line.trim_ascii().is_empty());
    }
    Ok(match FileFormat::detect(path)? {
        FileFormat::Csv { .. } => count.saturating_sub(1),
        FileFormat::JsonLines => count,
    })
}

/// The one-series schema a CSV header implies: the first of `timestamp`,
/// `datetime`, `time` as event time and every other column as an identity
/// feature, except those named in `ignore`.
pub fn infer_schema(path: &Path, ignore: &[&str]) -> Result<Schema, InputError> {
    let FileFormat::Csv { delimiter } = FileFormat::detect(path)? else {
        return Err(InputError::file(
            path,
            InputErrorKind::Io(
                "a schema can only be inferred from a CSV header; pass --schema".into(),
            ),
        ));
    };
    let mut reader = csv_reader(delimiter).from_reader(open(path)?);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| InputError::file(path, InputErrorKind::Io(e.to_string())))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let timestamp = ["timestamp", "datetime", "time"]
        .into_iter()
        .find(|t| header.iter().any(|h| h == t))
        .ok_or_else(|| {
            InputError::at(
                path,
                1,
                Some("timestamp".into()),
                InputErrorKind::UnknownColumn(excerpt(&header.join(", "))),
            )
        })?;
    let features: Vec<&str> = header
        .iter()
        .map(String::as_str)
        .filter(|h| *h != timestamp && !ignore.contains(h))
        .collect();
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("series");
    Ok(Schema::identity(name, timestamp, &features))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn csv_fields_with_commas_or_quotes_are_quoted() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }

    fn file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        (dir, path)
    }

    fn nab_schema() -> Schema {
        Schema::identity("nab", "timestamp", &["value"])
    }

    fn first_error(name: &str, text: &str, schema: Schema) -> String {
        let (_dir, path) = file(name, text);
        let err = match FileSource::open(&path, schema, ReadOptions::default()) {
            Err(e) => e,
            Ok(source) => source.read_all().unwrap_err(),
        };
        let shown = err.to_string();
        shown
            .rsplit_once(name)
            .map(|(_, rest)| format!("{name}{rest}"))
            .unwrap()
    }

    #[test]
    fn reads_nab_and_skab_layouts() {
        let (_d, nab) = file(
            "nab.csv",
            "timestamp,value\n2014-04-01 00:00:00,1.5\n2014-04-01 00:05:00,2\n",
        );
        let (rows, skipped) = FileSource::open(&nab, nab_schema(), ReadOptions::default())
            .unwrap()
            .read_all()
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[1].line, rows[1].record.inputs.clone()),
            (3, vec![2.0])
        );
        assert_eq!(skipped.total(), 0);

        let skab_text = "datetime;A;B;anomaly;changepoint\n2020-03-09 10:14:33;1;2;0;0\n2020-03-09 10:14:34;3;4;1;0\n";
        let (_d, skab) = file("skab.csv", skab_text);
        let schema = infer_schema(&skab, &["anomaly", "changepoint"]).unwrap();
        assert_eq!(schema.input_names(), ["A", "B"]);
        let (rows, _) = FileSource::open(&skab, schema, ReadOptions::default())
            .unwrap()
            .read_all()
            .unwrap();
        assert_eq!(rows[1].record.inputs, vec![3.0, 4.0]);
    }

    #[test]
    fn reads_json_lines_with_keys() {
        let text = "{\"k\":\"a\",\"timestamp\":1,\"value\":1}\n\n{\"k\":\"b\",\"timestamp\":0,\"value\":2}\n";
        let (_d, path) = file("x.jsonl", text);
        let mut schema = nab_schema();
        schema.key_field = Some("k".into());
        let (rows, _) = FileSource::open(&path, schema, ReadOptions::default())
            .unwrap()
            .read_all()
            .unwrap();
        let keys: Vec<_> = rows
            .iter()
            .map(|r| (r.line, r.record.key.as_str()))
            .collect();
        assert_eq!(keys, [(1, "a"), (3, "b")]);
        assert_eq!(count_rows(&path).unwrap(), 2);
    }

    #[test]
    fn bad_input_is_one_line_naming_file_line_and_column() {
        let ts = "timestamp,value\n";
        let cases = [
            (
                "a.csv",
                format!("{ts}2014-04-01 00:00:00,abc\n"),
                "a.csv:2: column \"value\": not a number: \"abc\"",
            ),
            (
                "b.csv",
                format!("{ts}2014-04-01 00:00:00,\n"),
                "b.csv:2: column \"value\": empty",
            ),
            (
                "c.csv",
                format!("{ts}2014-04-01 00:00:00,1,7\n"),
                "c.csv:2: wrong column count: expected 2, found 3",
            ),
            ("d.csv", String::new(), "d.csv: the file has no data rows"),
            ("e.csv", ts.to_owned(), "e.csv: the file has no data rows"),
            (
                "f.csv",
                format!("{ts}2014-04-01 00:05:00,1\n2014-04-01 00:00:00,2\n"),
                "f.csv:3: column \"timestamp\": timestamp goes backwards for key \"default\": 1396310400000 ms after 1396310700000 ms",
            ),
            (
                "g.csv",
                "timestamp,valu\n1,2\n".to_owned(),
                "g.csv:1: column \"value\": not in the header (the header has: timestamp, valu)",
            ),
            (
                "h.jsonl",
                "{\"timestamp\":1,\"value\":1}\n[1]\n".to_owned(),
                "h.jsonl:2: not a JSON object: found an array",
            ),
            (
                "i.csv",
                format!("{ts}2014-04-01 00:00:00,inf\n"),
                "i.csv:2: column \"value\": not finite: inf",
            ),
        ];
        for (name, text, expected) in cases {
            assert_eq!(first_error(name, &text, nab_schema()), expected);
        }
    }

    #[test]
    fn skips_and_counts_bad_rows_when_asked() {
        let text = "timestamp,value\n1,1\n2,x\n3,3,3\n4,4\n";
        let (_d, path) = file("s.csv", text);
        let (rows, skipped) =
            FileSource::open(&path, nab_schema(), ReadOptions::skipping_bad_rows(true))
                .unwrap()
                .read_all()
                .unwrap();
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 5]);
        assert_eq!(skipped.total(), 2);
        assert_eq!(
            skipped.to_string(),
            "2 bad rows skipped (column_count: 1, not_numeric: 1)"
        );
    }
}
