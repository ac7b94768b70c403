//! `dealer-agent import FILE --mapping MAP.toml [--dry-run] [--resume]`: a dealership's history
//! from its DMS, as CSV (with a header row) or JSON Lines, into the agent's store.
//!
//! Each row becomes one record through the [`mapping`] and the same conversions as the staff
//! screen's forms ([`crate::record_form`]: Jalali or Gregorian dates, digits of any script,
//! enum values by their Persian names), with its [`Origin`]: the source system, the source's
//! record id and creation time. Rows are committed in chunks, each one atomic and durable
//! ([`AgentStore::capture_imported`]); a source id already imported with the same content is a
//! no-op, with other content a correction. So an import can be killed at any moment and run
//! again: no row is saved twice and none is skipped. `--resume` skips the rows a progress file
//! (`FILE.progress`) says are done, which only makes the rerun faster.
//!
//! A row that cannot become a record is written, with the reason, to `FILE.rejects.csv` (or
//! `.jsonl`) in the file's own format, to be fixed and imported again. `--dry-run` saves
//! nothing and lists, per row, what capture would refuse and what the one-record entry checks
//! (the code the hub's R00/V/C rules run) warn about, with a summary by rule.

pub mod mapping;
pub mod rows;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hamgam_proto::record::v1::Origin;

use crate::lang::Lang;
use crate::record_form::{payload_json_dated, Typed};
use crate::store::{AgentStore, ImportOutcome, Imported, StoreError};
use mapping::Mapping;
use rows::{Format, Row, RowReader};

/// Rows per durable chunk.
pub const CHUNK_ROWS: usize = 1_000;

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Rows(#[from] rows::RowsError),
    #[error("the store refused a chunk: {0}")]
    Store(#[from] StoreError),
    #[error("the running agent did not take a chunk: {0}")]
    RunningAgent(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How an import runs.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub dry_run: bool,
    pub resume: bool,
    /// "Now" for the entry checks' date plausibility (the store's clock).
    pub now_ms: i64,
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub rows: u64,
    /// Rows skipped by `--resume` (done by an earlier run).
    pub resumed: u64,
    pub saved: u64,
    pub unchanged: u64,
    pub corrected: u64,
    pub rejected: u64,
    /// Entry-check warnings by rule (saved all the same).
    pub warnings: BTreeMap<String, u64>,
    /// Refusals by rule (R00 for a row that does not make a record).
    pub refusals: BTreeMap<String, u64>,
}

/// One row read and converted.
struct Converted {
    imported: Imported,
    warnings: Vec<hamgam_proto::entry::Warning>,
}

/// The record a row makes, or why it cannot make one.
fn convert(mapping: &Mapping, row: &Row, now_ms: i64) -> Result<Converted, String> {
    let cell = |column: &str| row.get(column).map(str::trim).unwrap_or("");
    let source_id = cell(&mapping.source_id);
    if source_id.is_empty() {
        return Err(format!(
            "the source id column `{}` is empty",
            mapping.source_id
        ));
    }
    let mut typed = Typed::default();
    for (path, column) in &mapping.fields {
        let raw = cell(column);
        let value = mapping
            .values
            .get(path)
            .and_then(|words| words.get(raw))
            .map(String::as_str)
            .unwrap_or(raw);
        typed.set(path, value.to_owned());
    }
    let staff_id = mapping
        .staff
        .as_deref()
        .map(cell)
        .filter(|s| !s.is_empty())
        .unwrap_or(&mapping.default_staff)
        .to_owned();
    let json = payload_json_dated(mapping.spec, &typed, &staff_id, Lang::En, mapping.dates)
        .map_err(|problems| {
            problems
                .iter()
                .map(|(field, why)| format!("{field}: {}", why.join("; ")))
                .collect::<Vec<_>>()
                .join("; ")
        })?;
    let payload =
        crate::capture::payload_from_json(mapping.spec.kind, json).map_err(|e| e.to_string())?;
    let bounds = hamgam_proto::limits::check_payload(&payload);
    if let Some(first) = bounds.first() {
        return Err(format!("over a size bound: {first}"));
    }
    let created_at_ms = match mapping.created_at.as_deref().map(cell) {
        None | Some("") => 0,
        Some(raw) => created_at(raw, mapping)?,
    };
    let origin = Origin {
        source_system: mapping.source_system.clone(),
        source_record_id: source_id.to_owned(),
        created_at_ms,
    };
    // Made when the source says, else at capture (now), as the hub reads it.
    let made_at_ms = if created_at_ms > 0 {
        created_at_ms
    } else {
        now_ms
    };
    let warnings = hamgam_proto::entry::check(&payload, now_ms, made_at_ms);
    Ok(Converted {
        imported: Imported {
            staff_id,
            payload,
            origin,
        },
        warnings,
    })
}

/// The source's creation time: a date in the mapping's style, then optionally `HH:MM[:SS]`,
/// Tehran time.
fn created_at(raw: &str, mapping: &Mapping) -> Result<i64, String> {
    let latin = hamgam_proto::text::normalize_digits(raw);
    let (date, time) = match latin.trim().split_once([' ', 'T']) {
        Some((date, time)) => (date, Some(time.trim())),
        None => (latin.trim(), None),
    };
    let day = mapping.dates.parse(date)?;
    let (hour, minute, second) = match time {
        None | Some("") => (0, 0, 0),
        Some(time) => {
            let parts: Vec<u8> = time
                .split(':')
                .map(|p| p.parse::<u8>())
                .collect::<Result<_, _>>()
                .map_err(|_| format!("`{raw}`: the time is not HH:MM or HH:MM:SS"))?;
            match parts.as_slice() {
                [h, m] => (*h, *m, 0),
                [h, m, s] => (*h, *m, *s),
                _ => return Err(format!("`{raw}`: the time is not HH:MM or HH:MM:SS")),
            }
        }
    };
    day.at_time_ms(hour, minute, second)
        .map_err(|e| format!("`{raw}`: {e}"))
}

/// The progress file of `file`: how many rows earlier runs committed.
fn progress_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".progress");
    PathBuf::from(name)
}

fn read_progress(file: &Path) -> u64 {
    std::fs::read_to_string(progress_path(file))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

fn write_progress(file: &Path, rows: u64) -> Result<(), ImportError> {
    let path = progress_path(file);
    let tmp = path.with_extension("progress.tmp");
    std::fs::write(&tmp, format!("{rows}\n"))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|source| ImportError::Write { path, source })
}

/// Prints progress to stderr at most once a second: rows, rows/s, and the time left by the
/// bytes read.
struct Progress {
    started: Instant,
    last: Instant,
    total_bytes: u64,
}

impl Progress {
    fn new(total_bytes: u64) -> Self {
        let now = Instant::now();
        Progress {
            started: now,
            last: now,
            total_bytes,
        }
    }

    fn tick(&mut self, rows: u64, bytes: u64, done: bool) {
        if !done && self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = rows as f64 / secs;
        let share = if self.total_bytes == 0 {
            1.0
        } else {
            (bytes as f64 / self.total_bytes as f64).min(1.0)
        };
        let left = if share > 0.0 {
            secs / share - secs
        } else {
            0.0
        };
        eprintln!(
            "import: {rows} rows, {:.0} %, {rate:.0} rows/s, {}",
            share * 100.0,
            if done {
                format!("done in {secs:.1} s")
            } else {
                format!("about {left:.0} s left")
            }
        );
    }
}

/// Where an import's chunks are saved: the store itself while no agent runs, or the running
/// agent through its local capture API ([`crate::local_grpc::Client`]). Either saves a chunk
/// atomically and durably, one record per source id.
pub trait ImportTarget {
    fn save(&self, chunk: Vec<Imported>) -> Result<Vec<ImportOutcome>, ImportError>;
}

impl ImportTarget for AgentStore {
    fn save(&self, chunk: Vec<Imported>) -> Result<Vec<ImportOutcome>, ImportError> {
        Ok(self.capture_imported(chunk)?)
    }
}

/// Runs the import of `file` into `store` (see the module docs); `listing` gets the dry run's
/// lines and the summary. Blocking.
pub fn run(
    store: &dyn ImportTarget,
    file: &Path,
    mapping: &Mapping,
    options: &ImportOptions,
    listing: &mut dyn Write,
) -> Result<ImportReport, ImportError> {
    let format = Format::of(file);
    let mut reader = RowReader::open(file, format)?;
    let mut rejects = rows::RejectWriter::new(file, format, reader.header());
    let mut report = ImportReport::default();
    let skip = if options.resume && !options.dry_run {
        read_progress(file)
    } else {
        0
    };
    let mut progress = Progress::new(reader.total_bytes());
    let mut chunk: Vec<Imported> = Vec::with_capacity(CHUNK_ROWS);
    let write = |e: std::io::Error| ImportError::Write {
        path: PathBuf::from("(the listing)"),
        source: e,
    };
    loop {
        let row = match reader.next_row() {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(e) => {
                // What was read before stays: the pending chunk is committed first.
                if !chunk.is_empty() {
                    commit(store, &mut chunk, &mut report)?;
                    write_progress(file, report.rows)?;
                }
                rejects.finish()?;
                return Err(e.into());
            }
        };
        report.rows += 1;
        if report.rows <= skip {
            report.resumed += 1;
            continue;
        }
        let converted = match &row.unreadable {
            Some(why) => Err(why.clone()),
            None => convert(mapping, &row, options.now_ms),
        };
        match converted {
            Err(why) => {
                report.rejected += 1;
                *report.refusals.entry("R00".into()).or_default() += 1;
                if options.dry_run {
                    writeln!(listing, "row {}: refused: {why}", row.number).map_err(write)?;
                } else {
                    rejects.reject(&row, &why)?;
                }
            }
            Ok(converted) => {
                for w in &converted.warnings {
                    *report.warnings.entry(w.rule_id.clone()).or_default() += 1;
                    if options.dry_run {
                        writeln!(
                            listing,
                            "row {} ({}): warning {} {}: {}",
                            row.number,
                            converted.imported.origin.source_record_id,
                            w.rule_id,
                            w.field,
                            w.reason_en()
                        )
                        .map_err(write)?;
                    }
                }
                if !options.dry_run {
                    chunk.push(converted.imported);
                }
            }
        }
        if chunk.len() >= CHUNK_ROWS {
            commit(store, &mut chunk, &mut report)?;
            write_progress(file, report.rows)?;
        }
        progress.tick(report.rows, reader.bytes_read(), false);
    }
    if !chunk.is_empty() {
        commit(store, &mut chunk, &mut report)?;
    }
    if !options.dry_run {
        write_progress(file, report.rows)?;
    }
    rejects.finish()?;
    progress.tick(report.rows, reader.bytes_read(), true);
    summary(&report, options, rejects.path(), listing).map_err(write)?;
    Ok(report)
}

fn commit(
    store: &dyn ImportTarget,
    chunk: &mut Vec<Imported>,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    for outcome in store.save(std::mem::take(chunk))? {
        match outcome {
            ImportOutcome::Saved(_) => report.saved += 1,
            ImportOutcome::Unchanged { .. } => report.unchanged += 1,
            ImportOutcome::Corrected { .. } => report.corrected += 1,
        }
    }
    Ok(())
}

fn summary(
    report: &ImportReport,
    options: &ImportOptions,
    rejects: Option<&Path>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let by_rule = |counts: &BTreeMap<String, u64>| {
        counts
            .iter()
            .map(|(rule, n)| format!("{rule} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if options.dry_run {
        writeln!(
            out,
            "dry run, nothing saved: {} rows; {} would be refused ({}); warnings: {}",
            report.rows,
            report.rejected,
            by_rule(&report.refusals),
            if report.warnings.is_empty() {
                "none".into()
            } else {
                by_rule(&report.warnings)
            }
        )?;
    } else {
        writeln!(
            out,
            "imported {} rows: {} saved, {} already there unchanged, {} corrected, {} refused{}{}; warnings: {}",
            report.rows,
            report.saved,
            report.unchanged,
            report.corrected,
            report.rejected,
            rejects
                .map(|p| format!(" (written with the reason to {})", p.display()))
                .unwrap_or_default(),
            if report.resumed > 0 {
                format!(", {} skipped as done by an earlier run", report.resumed)
            } else {
                String::new()
            },
            if report.warnings.is_empty() {
                "none".into()
            } else {
                by_rule(&report.warnings)
            }
        )?;
    }
    Ok(())
}
