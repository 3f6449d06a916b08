//! Machine-readable outputs: rows of one kind (connections, transactions, servers) as CSV,
//! as JSON lines or as Parquet. The columns are those of [`super::cells`].

use std::io::{self, BufWriter, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::record::{ConnectionRecord, TransactionRecord};

use super::cells::{self, Column, Columns, Row, Style, TimeFormat};
use super::parquet::ParquetFile;
use super::servers::ServerRecord;
use super::{RunEnd, Sink};

/// Which records a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// One per connection, written as connections end.
    Connections,
    /// One per request, written as connections end.
    Transactions,
    /// One per server, written at the end.
    Servers,
    /// One per finding, written at the end.
    Findings,
}

impl Rows {
    /// The columns of a row type; findings have none (they are JSON lines only).
    pub(super) fn columns(self) -> Option<Vec<Column>> {
        Some(match self {
            Rows::Connections => cells::schema(&ConnectionRecord::blank()),
            Rows::Transactions => cells::schema(&TransactionRecord::blank()),
            Rows::Servers => cells::schema(&ServerRecord::new(SocketAddr::from((
                Ipv4Addr::UNSPECIFIED,
                0,
            )))),
            Rows::Findings => return None,
        })
    }
}

enum Encoder {
    /// The header line is written before the first row, or at the end when there is none,
    /// so that a run without rows still leaves a file that names its columns.
    Csv {
        writer: Box<csv::Writer<Box<dyn Write>>>,
        times: TimeFormat,
        header_written: bool,
    },
    JsonLines(BufWriter<Box<dyn Write>>),
    Parquet(Box<ParquetFile>),
}

/// A file of rows in one format.
pub struct RowsFile {
    rows: Rows,
    encoder: Encoder,
}

impl RowsFile {
    pub fn csv(rows: Rows, out: Box<dyn Write>, times: TimeFormat) -> RowsFile {
        RowsFile {
            rows,
            encoder: Encoder::Csv {
                writer: Box::new(
                    csv::WriterBuilder::new()
                        .has_headers(false)
                        .from_writer(out),
                ),
                times,
                header_written: false,
            },
        }
    }

    pub fn json_lines(rows: Rows, out: Box<dyn Write>) -> RowsFile {
        RowsFile {
            rows,
            encoder: Encoder::JsonLines(BufWriter::new(out)),
        }
    }

    /// Typed columns in `path`; with `rotate` (live), a new file every period.
    pub fn parquet(rows: Rows, path: &Path, rotate: Option<Duration>) -> io::Result<RowsFile> {
        Ok(RowsFile {
            rows,
            encoder: Encoder::Parquet(Box::new(ParquetFile::create(rows, path, rotate)?)),
        })
    }

    fn write<R>(&mut self, record: &R) -> io::Result<()>
    where
        for<'a> Row<'a, R>: Columns,
    {
        match &mut self.encoder {
            Encoder::Parquet(file) => file.write(record),
            _ => self.write_text(record),
        }
    }

    /// As CSV or JSON lines; rows without typed columns (findings) are written only so.
    fn write_text<R>(&mut self, record: &R) -> io::Result<()>
    where
        for<'a> Row<'a, R>: Serialize,
    {
        self.write_csv_header()?;
        match &mut self.encoder {
            Encoder::Csv { writer, times, .. } => writer
                .serialize(Row {
                    record,
                    style: Style::Csv(*times),
                })
                .map_err(io_error),
            Encoder::JsonLines(writer) => {
                let row = Row {
                    record,
                    style: Style::Json,
                };
                serde_json::to_writer(&mut *writer, &row).map_err(io::Error::from)?;
                writer.write_all(b"\n")
            }
            Encoder::Parquet(_) => Err(io::Error::other("these rows have no Parquet form")),
        }
    }
}

impl RowsFile {
    /// The CSV header line, once.
    fn write_csv_header(&mut self) -> io::Result<()> {
        let Encoder::Csv {
            writer,
            header_written,
            ..
        } = &mut self.encoder
        else {
            return Ok(());
        };
        if !*header_written {
            *header_written = true;
            if let Some(columns) = self.rows.columns() {
                let names = columns.iter().map(|column| column.name);
                writer.write_record(names).map_err(io_error)?;
            }
        }
        Ok(())
    }
}

/// A CSV error as an I/O error, keeping the kind of an I/O failure (a closed pipe).
fn io_error(err: csv::Error) -> io::Error {
    if !err.is_io_error() {
        return io::Error::other(err);
    }
    match err.into_kind() {
        csv::ErrorKind::Io(err) => err,
        other => io::Error::other(format!("{other:?}")),
    }
}

impl Sink for RowsFile {
    fn connection(&mut self, record: &ConnectionRecord) -> io::Result<()> {
        match self.rows {
            Rows::Connections => self.write(record),
            _ => Ok(()),
        }
    }

    fn transaction(&mut self, record: &TransactionRecord) -> io::Result<()> {
        match self.rows {
            Rows::Transactions => self.write(record),
            _ => Ok(()),
        }
    }

    fn wants_transactions(&self) -> bool {
        self.rows == Rows::Transactions
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.encoder {
            Encoder::Csv { writer, .. } => writer.flush(),
            Encoder::JsonLines(writer) => writer.flush(),
            // Parquet rows become readable when the file closes.
            Encoder::Parquet(_) => Ok(()),
        }
    }

    fn tick(&mut self, now_ns: u64) -> io::Result<()> {
        match &mut self.encoder {
            Encoder::Parquet(file) => file.tick(now_ns),
            _ => Ok(()),
        }
    }

    fn finish(&mut self, end: &RunEnd<'_>) -> io::Result<()> {
        match self.rows {
            Rows::Servers => end.servers.iter().try_for_each(|r| self.write(r))?,
            Rows::Findings => end.findings.iter().try_for_each(|f| self.write_text(f))?,
            Rows::Connections | Rows::Transactions => {}
        }
        self.write_csv_header()?;
        match &mut self.encoder {
            Encoder::Parquet(file) => file.close(),
            _ => self.flush(),
        }
    }
}
