//! Tables in: CSV with a header row, or JSON Lines (an object per line),
//! gzipped or not. The format follows the extension (`.csv`, `.jsonl`,
//! `.ndjson` or `.json`, each optionally `.gz`). Cells stay text until the
//! column's encoder reads them; an empty cell, `NA`, `N/A`, `NaN` or `null`
//! (any case) and a JSON `null` or absent field are missing values.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use tidewatch_stream::source::file::{LineLimited, csv_reader};

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: unknown extension; use .csv, .jsonl, .ndjson or .json (optionally .gz)")]
    UnknownFormat { path: PathBuf },
    #[error("{path}:{line}: {message}")]
    BadRow {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}: no column named {column:?} (columns: {columns})")]
    MissingColumn {
        path: PathBuf,
        column: String,
        columns: String,
    },
    #[error("{0}: no rows")]
    Empty(PathBuf),
}

/// One row: its cells in the table's column order (`None` when missing)
/// and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: u64,
    pub cells: Vec<Option<String>>,
}

/// A file's rows, with the column names of its header (CSV) or of the
/// fields its objects carry, in order of first appearance (JSON Lines).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub path: PathBuf,
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
}

/// Whether a cell's text stands for a missing value.
pub fn is_missing(cell: &str) -> bool {
    let cell = cell.trim();
    cell.is_empty()
        || ["na", "n/a", "nan", "null"]
            .iter()
            .any(|m| cell.eq_ignore_ascii_case(m))
}

enum Format {
    Csv,
    JsonLines,
}

impl Table {
    /// Reads the whole file.
    pub fn read(path: &Path) -> Result<Table, TableError> {
        let io = |e: &dyn std::fmt::Display| TableError::Io {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let (name, gzipped) = match name.strip_suffix(".gz") {
            Some(inner) => (inner.to_owned(), true),
            None => (name, false),
        };
        let format = match name.rsplit_once('.').map(|(_, e)| e) {
            Some("csv") => Format::Csv,
            Some("jsonl" | "ndjson" | "json") => Format::JsonLines,
            _ => {
                return Err(TableError::UnknownFormat {
                    path: path.to_owned(),
                });
            }
        };
        let file = File::open(path).map_err(|e| io(&e))?;
        let reader: Box<dyn Read> = if gzipped {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        let reader = BufReader::new(LineLimited::new(reader));
        let table = match format {
            Format::Csv => read_csv(path, reader)?,
            Format::JsonLines => read_json_lines(path, reader)?,
        };
        if table.rows.is_empty() {
            return Err(TableError::Empty(path.to_owned()));
        }
        Ok(table)
    }

    /// The index of the column named `name`.
    pub fn column(&self, name: &str) -> Result<usize, TableError> {
        self.columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| TableError::MissingColumn {
                path: self.path.clone(),
                column: name.to_owned(),
                columns: self.columns.join(", "),
            })
    }

    /// The rows at `indices`, in that order, as a table of their own.
    pub fn subset(&self, indices: &[usize]) -> Table {
        Table {
            path: self.path.clone(),
            columns: self.columns.clone(),
            rows: indices.iter().map(|&i| self.rows[i].clone()).collect(),
        }
    }
}

fn read_csv(path: &Path, reader: impl Read) -> Result<Table, TableError> {
    let bad = |line: u64, message: String| TableError::BadRow {
        path: path.to_owned(),
        line,
        message,
    };
    let mut reader = csv_reader(b',').flexible(true).from_reader(reader);
    let columns: Vec<String> = reader
        .headers()
        .map_err(|e| bad(1, e.to_string()))?
        .iter()
        .map(str::to_owned)
        .collect();
    if let Some(duplicate) = columns
        .iter()
        .enumerate()
        .find(|(i, c)| columns[..*i].contains(c))
    {
        return Err(bad(1, format!("column {:?} appears twice", duplicate.1)));
    }
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(bad(e.position().map_or(0, |p| p.line()), e.to_string())),
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.len() == 1 && record[0].is_empty() {
            continue;
        }
        if record.len() != columns.len() {
            return Err(bad(
                line,
                format!(
                    "{} fields where the header has {}",
                    record.len(),
                    columns.len()
                ),
            ));
        }
        let cells = record
            .iter()
            .map(|cell| (!is_missing(cell)).then(|| cell.to_owned()))
            .collect();
        rows.push(Row { line, cells });
    }
    Ok(Table {
        path: path.to_owned(),
        columns,
        rows,
    })
}

fn read_json_lines(path: &Path, reader: impl BufRead) -> Result<Table, TableError> {
    let mut columns: Vec<String> = Vec::new();
    let mut objects = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let number = index as u64 + 1;
        let bad = |message: String| TableError::BadRow {
            path: path.to_owned(),
            line: number,
            message,
        };
        let line = line.map_err(|e| bad(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let object = match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(serde_json::Value::Object(object)) => object,
            Ok(_) => return Err(bad("not a JSON object".into())),
            Err(e) => return Err(bad(format!("not JSON: {e}"))),
        };
        let mut cells = Vec::with_capacity(object.len());
        for (key, value) in object {
            let cell = match value {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => (!is_missing(&s)).then_some(s),
                serde_json::Value::Number(n) => Some(n.to_string()),
                serde_json::Value::Bool(b) => Some(b.to_string()),
                _ => return Err(bad(format!("field {key:?} is an array or an object"))),
            };
            let column = match columns.iter().position(|c| *c == key) {
                Some(c) => c,
                None => {
                    columns.push(key);
                    columns.len() - 1
                }
            };
            cells.push((column, cell));
        }
        objects.push((number, cells));
    }
    let rows = objects
        .into_iter()
        .map(|(line, fields)| {
            let mut cells = vec![None; columns.len()];
            for (column, cell) in fields {
                cells[column] = cell;
            }
            Row { line, cells }
        })
        .collect();
    Ok(Table {
        path: path.to_owned(),
        columns,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_lines_read_the_same_cells() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv");
        std::fs::write(&csv, "a,b\n1,x\n,NA\n3,\"y,\nz\"\n4,w\n").unwrap();
        let jsonl = dir.path().join("t.jsonl");
        std::fs::write(
            &jsonl,
            "{\"a\": 1, \"b\": \"x\"}\n{\"b\": null}\n{\"b\": \"y,\\nz\", \"a\": 3}\n\n{\"a\": 4, \"b\": \"w\"}\n",
        )
        .unwrap();
        let from_csv = Table::read(&csv).unwrap();
        let from_json = Table::read(&jsonl).unwrap();
        assert_eq!(from_csv.columns, ["a", "b"]);
        assert_eq!(from_json.columns, ["a", "b"]);
        let cells = |t: &Table| t.rows.iter().map(|r| r.cells.clone()).collect::<Vec<_>>();
        assert_eq!(cells(&from_csv), cells(&from_json));
        assert_eq!(cells(&from_csv)[1], vec![None, None]);
        // A row's line is where it starts, a quoted line break included.
        assert_eq!(from_csv.rows[3].line, 6);
        assert_eq!(from_json.rows[3].line, 5);
    }

    #[test]
    fn a_short_row_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv");
        std::fs::write(&csv, "a,b\n1,2\n3\n").unwrap();
        let error = Table::read(&csv).unwrap_err().to_string();
        assert!(
            error.ends_with("t.csv:3: 1 fields where the header has 2"),
            "{error}"
        );
    }
}
