//! The rows of an import file: CSV with a header row (the `csv` crate), or JSON Lines (one
//! object per line, values as text), and the reject file that gives refused rows back in the
//! same format with their reason. A row that cannot be read as a row (a CSV row with the wrong
//! number of cells, a line that is not a JSON object) is refused by itself; the rest goes on.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// The reject file's extra column (CSV) or key (JSON Lines).
pub const REASON: &str = "reason";
/// The reject file's key for a line that was not a JSON object, kept as it was.
pub const LINE: &str = "line";

/// Why the file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RowsError {
    #[error("cannot read {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}, row {row}: {detail}")]
    Syntax {
        path: PathBuf,
        row: u64,
        detail: String,
    },
    #[error("cannot write the reject file {path}: {source}")]
    Reject {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The file's format, by its extension: `.jsonl` / `.ndjson` are JSON Lines, anything else CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "ndjson") => Format::JsonLines,
            _ => Format::Csv,
        }
    }
}

/// One row: its number in the file (1 = the first data row) and its cells by column.
#[derive(Debug, Clone)]
pub struct Row {
    pub number: u64,
    cells: BTreeMap<String, String>,
    /// The row as read, for the reject file.
    raw: Raw,
    /// Why the row could not be read as a row (cells missing, not JSON): it is refused.
    pub unreadable: Option<String>,
}

#[derive(Debug, Clone)]
enum Raw {
    Csv(csv::StringRecord),
    Json(serde_json::Map<String, serde_json::Value>),
    /// A line that is not a JSON object, as it was.
    Line(String),
}

impl Row {
    /// The cell of `column`.
    pub fn get(&self, column: &str) -> Option<&str> {
        self.cells.get(column).map(String::as_str)
    }
}

/// Reads the rows of a file in order.
pub struct RowReader {
    path: PathBuf,
    total_bytes: u64,
    source: Source,
    number: u64,
}

enum Source {
    Csv {
        reader: csv::Reader<File>,
        header: csv::StringRecord,
    },
    Json {
        lines: std::io::Lines<BufReader<File>>,
        bytes: u64,
    },
}

impl RowReader {
    pub fn open(path: &Path, format: Format) -> Result<RowReader, RowsError> {
        let open = |source| RowsError::Open {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(open)?;
        let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        let source = match format {
            Format::Csv => {
                // Flexible: a row with too few or too many cells is refused by itself (to the
                // reject file), not the whole file.
                let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
                let header = reader
                    .headers()
                    .map_err(|e| RowsError::Syntax {
                        path: path.to_owned(),
                        row: 0,
                        detail: format!("the header row cannot be read: {e}"),
                    })?
                    .clone();
                Source::Csv { reader, header }
            }
            Format::JsonLines => Source::Json {
                lines: BufReader::new(file).lines(),
                bytes: 0,
            },
        };
        Ok(RowReader {
            path: path.to_owned(),
            total_bytes,
            source,
            number: 0,
        })
    }

    /// The CSV header (none for JSON Lines).
    pub fn header(&self) -> Option<csv::StringRecord> {
        match &self.source {
            Source::Csv { header, .. } => Some(header.clone()),
            Source::Json { .. } => None,
        }
    }

    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// How far into the file the reader is, in bytes.
    pub fn bytes_read(&self) -> u64 {
        match &self.source {
            Source::Csv { reader, .. } => reader.position().byte(),
            Source::Json { bytes, .. } => *bytes,
        }
    }

    /// The next row, or `None` at the end. Blank JSON lines are skipped.
    pub fn next_row(&mut self) -> Result<Option<Row>, RowsError> {
        let syntax = |row: u64, detail: String| RowsError::Syntax {
            path: self.path.clone(),
            row,
            detail,
        };
        match &mut self.source {
            Source::Csv { reader, header } => {
                let mut record = csv::StringRecord::new();
                let more = reader
                    .read_record(&mut record)
                    .map_err(|e| syntax(self.number + 1, e.to_string()))?;
                if !more {
                    return Ok(None);
                }
                self.number += 1;
                let unreadable = (record.len() != header.len()).then(|| {
                    format!(
                        "the row has {} cells where the header has {}",
                        record.len(),
                        header.len()
                    )
                });
                let cells = header
                    .iter()
                    .zip(record.iter())
                    .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                    .collect();
                Ok(Some(Row {
                    number: self.number,
                    cells,
                    raw: Raw::Csv(record),
                    unreadable,
                }))
            }
            Source::Json { lines, bytes } => loop {
                let Some(line) = lines.next() else {
                    return Ok(None);
                };
                let line = line.map_err(|e| syntax(self.number + 1, e.to_string()))?;
                *bytes += line.len() as u64 + 1;
                if line.trim().is_empty() {
                    continue;
                }
                self.number += 1;
                let object: serde_json::Map<String, serde_json::Value> =
                    match serde_json::from_str(&line) {
                        Ok(object) => object,
                        Err(e) => {
                            return Ok(Some(Row {
                                number: self.number,
                                cells: BTreeMap::new(),
                                raw: Raw::Line(line),
                                unreadable: Some(format!("not a JSON object on one line: {e}")),
                            }))
                        }
                    };
                let cells = object
                    .iter()
                    .map(|(k, v)| {
                        let text = match v {
                            serde_json::Value::String(s) => s.clone(),
                            serde_json::Value::Null => String::new(),
                            other => other.to_string(),
                        };
                        (k.clone(), text)
                    })
                    .collect();
                return Ok(Some(Row {
                    number: self.number,
                    cells,
                    raw: Raw::Json(object),
                    unreadable: None,
                }));
            },
        }
    }
}

/// Writes refused rows, in the import file's format, with a `reason`: created at the first
/// refusal, so a clean import leaves no file.
pub struct RejectWriter {
    path: PathBuf,
    header: Option<csv::StringRecord>,
    out: Option<Out>,
}

enum Out {
    Csv(Box<csv::Writer<File>>),
    Json(std::io::BufWriter<File>),
}

impl RejectWriter {
    pub fn new(file: &Path, format: Format, header: Option<csv::StringRecord>) -> Self {
        let mut name = file.as_os_str().to_owned();
        name.push(match format {
            Format::Csv => ".rejects.csv",
            Format::JsonLines => ".rejects.jsonl",
        });
        RejectWriter {
            path: PathBuf::from(name),
            header,
            out: None,
        }
    }

    /// The reject file, once a row was refused.
    pub fn path(&self) -> Option<&Path> {
        self.out.as_ref().map(|_| self.path.as_path())
    }

    fn error(&self, source: std::io::Error) -> RowsError {
        RowsError::Reject {
            path: self.path.clone(),
            source,
        }
    }

    pub fn reject(&mut self, row: &Row, reason: &str) -> Result<(), RowsError> {
        if self.out.is_none() {
            let file = File::create(&self.path).map_err(|e| self.error(e))?;
            self.out = Some(match &self.header {
                Some(header) => {
                    // Flexible: a refused row with too many cells is given back as it was.
                    let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(file);
                    let mut names = header.clone();
                    names.push_field(REASON);
                    writer
                        .write_record(&names)
                        .map_err(|e| self.error(e.into()))?;
                    Out::Csv(Box::new(writer))
                }
                None => Out::Json(std::io::BufWriter::new(file)),
            });
        }
        let written = match (self.out.as_mut(), &row.raw) {
            (Some(Out::Csv(writer)), Raw::Csv(record)) => {
                let mut fields = record.clone();
                // A short row is padded, so its reason is under `reason`.
                let width = self.header.as_ref().map_or(0, csv::StringRecord::len);
                while fields.len() < width {
                    fields.push_field("");
                }
                fields.push_field(reason);
                writer.write_record(&fields).map_err(std::io::Error::from)
            }
            (Some(Out::Json(writer)), Raw::Json(object)) => {
                let mut object = object.clone();
                object.insert(REASON.into(), reason.into());
                serde_json::to_string(&object)
                    .map_err(std::io::Error::other)
                    .and_then(|line| writeln!(writer, "{line}"))
            }
            // A line that was not JSON: kept whole under `line`, beside the reason.
            (Some(Out::Json(writer)), Raw::Line(line)) => {
                let object = serde_json::json!({ LINE: line, REASON: reason });
                writeln!(writer, "{object}")
            }
            _ => Err(std::io::Error::other("a row of another format")),
        };
        written.map_err(|e| self.error(e))
    }

    /// Flushes the reject file to disk.
    pub fn finish(&mut self) -> Result<(), RowsError> {
        let flushed = match self.out.as_mut() {
            Some(Out::Csv(writer)) => writer.flush(),
            Some(Out::Json(writer)) => writer.flush(),
            None => Ok(()),
        };
        flushed.map_err(|e| self.error(e))
    }
}
