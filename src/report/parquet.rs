//! Parquet output: the rows of [`super::cells`] as typed columns (`docs/csv.md` lists the
//! types), for DuckDB, Spark and other engines to query many files at once (`docs/scale.md`).
//!
//! The schema and the values come from the same [`Columns`] impls as the CSV: each column's
//! type is the [`Kind`] of its Rust type, so a column added there is a Parquet column too.
//! Rows are gathered into Arrow record batches of at most [`BATCH_ROWS`] rows; the writer
//! closes a row group every [`ROW_GROUP_ROWS`] rows or [`ROW_GROUP_BYTES`] bytes, so memory
//! stays bounded however long the capture. A Parquet file is readable only once it is closed
//! (its footer is written last); with a rotation period, a live capture closes its file and
//! opens the next one every period, each named by the UTC time it was opened.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampNanosecondBuilder,
};
use arrow_array::{ArrayRef, ListArray, RecordBatch};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::ser::{self, Impossible, Serialize};

use super::cells::{Cell, Cells, Column, Columns, Kind, Row, Style};
use super::files::Rows;

/// Rows gathered before they are handed to the Parquet writer as one record batch.
pub const BATCH_ROWS: usize = 8192;
/// Rows per row group (the unit engines read in parallel and skip by statistics).
pub const ROW_GROUP_ROWS: usize = 65_536;
/// Encoded bytes a row group may hold in memory before it is written out.
pub const ROW_GROUP_BYTES: usize = 32 << 20;

/// The Arrow type of a column of `kind`.
fn data_type(kind: &Kind) -> DataType {
    match kind {
        Kind::Int => DataType::Int64,
        Kind::Float => DataType::Float64,
        Kind::Bool => DataType::Boolean,
        Kind::Time => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
        Kind::Text => DataType::Utf8,
        Kind::List(item) => DataType::List(item_field(item)),
    }
}

/// The element of a list column: lists hold no nulls.
fn item_field(item: &Kind) -> Arc<Field> {
    Arc::new(Field::new("item", data_type(item), false))
}

/// The Arrow schema of a row type's columns.
pub fn arrow_schema(columns: &[Column]) -> Schema {
    Schema::new(
        columns
            .iter()
            .map(|column| Field::new(column.name, data_type(&column.kind), column.nullable))
            .collect::<Vec<_>>(),
    )
}

/// One column's values of the batch being gathered.
enum Builder {
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Time(TimestampNanosecondBuilder),
    Text(StringBuilder),
    List {
        item: Arc<Field>,
        offsets: Vec<i32>,
        valid: Vec<bool>,
        values: Box<Builder>,
    },
}

impl Builder {
    fn new(kind: &Kind) -> Builder {
        match kind {
            Kind::Int => Builder::Int(Int64Builder::new()),
            Kind::Float => Builder::Float(Float64Builder::new()),
            Kind::Bool => Builder::Bool(BooleanBuilder::new()),
            Kind::Time => Builder::Time(TimestampNanosecondBuilder::new().with_timezone("UTC")),
            Kind::Text => Builder::Text(StringBuilder::new()),
            Kind::List(item) => Builder::List {
                item: item_field(item),
                offsets: vec![0],
                valid: Vec::new(),
                values: Box::new(Builder::new(item)),
            },
        }
    }

    fn len(&self) -> usize {
        use arrow_array::builder::ArrayBuilder;
        match self {
            Builder::Int(b) => b.len(),
            Builder::Float(b) => b.len(),
            Builder::Bool(b) => b.len(),
            Builder::Time(b) => b.len(),
            Builder::Text(b) => b.len(),
            Builder::List { valid, .. } => valid.len(),
        }
    }

    fn append_null(&mut self) {
        match self {
            Builder::Int(b) => b.append_null(),
            Builder::Float(b) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
            Builder::Time(b) => b.append_null(),
            Builder::Text(b) => b.append_null(),
            Builder::List { offsets, valid, .. } => {
                offsets.push(offsets.last().copied().unwrap_or(0));
                valid.push(false);
            }
        }
    }

    /// The values gathered so far as an array; the builder starts empty again.
    fn finish(&mut self) -> Result<ArrayRef, CellError> {
        Ok(match self {
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::List {
                item,
                offsets,
                valid,
                values,
            } => {
                let offsets = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                let valid = std::mem::take(valid);
                let nulls = valid.contains(&false).then(|| NullBuffer::from(valid));
                let list = ListArray::try_new(item.clone(), offsets, values.finish()?, nulls)
                    .map_err(|e| CellError(e.to_string()))?;
                Arc::new(list)
            }
        })
    }
}

/// A value that does not fit its column (a bug in a `Columns` impl, reported, not a panic).
#[derive(Debug)]
pub struct CellError(String);

impl std::fmt::Display for CellError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CellError {}

impl ser::Error for CellError {
    fn custom<T: std::fmt::Display>(message: T) -> CellError {
        CellError(message.to_string())
    }
}

/// Serializes one value into its column's builder.
struct Put<'a>(&'a mut Builder);

impl Put<'_> {
    fn mismatch(&self, what: &str) -> CellError {
        let column = match self.0 {
            Builder::Int(_) => "an integer",
            Builder::Float(_) => "a float",
            Builder::Bool(_) => "a boolean",
            Builder::Time(_) => "a timestamp",
            Builder::Text(_) => "a string",
            Builder::List { .. } => "a list",
        };
        CellError(format!("{what} in {column} column"))
    }
}

impl<'a> ser::Serializer for Put<'a> {
    type Ok = ();
    type Error = CellError;
    type SerializeSeq = PutSeq<'a>;
    type SerializeTuple = Impossible<(), CellError>;
    type SerializeTupleStruct = Impossible<(), CellError>;
    type SerializeTupleVariant = Impossible<(), CellError>;
    type SerializeMap = Impossible<(), CellError>;
    type SerializeStruct = Impossible<(), CellError>;
    type SerializeStructVariant = Impossible<(), CellError>;

    fn serialize_bool(self, v: bool) -> Result<(), CellError> {
        match self.0 {
            Builder::Bool(b) => {
                b.append_value(v);
                Ok(())
            }
            _ => Err(self.mismatch("a boolean")),
        }
    }
    fn serialize_i8(self, v: i8) -> Result<(), CellError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), CellError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), CellError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), CellError> {
        match self.0 {
            Builder::Int(b) => {
                b.append_value(v);
                Ok(())
            }
            Builder::Time(b) => {
                b.append_value(v);
                Ok(())
            }
            _ => Err(self.mismatch("an integer")),
        }
    }
    fn serialize_u8(self, v: u8) -> Result<(), CellError> {
        self.serialize_i64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), CellError> {
        self.serialize_i64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), CellError> {
        self.serialize_i64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), CellError> {
        let v = i64::try_from(v)
            .map_err(|_| CellError(format!("{v} does not fit a signed 64-bit column")))?;
        self.serialize_i64(v)
    }
    fn serialize_f32(self, v: f32) -> Result<(), CellError> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), CellError> {
        match self.0 {
            Builder::Float(b) => {
                b.append_value(v);
                Ok(())
            }
            _ => Err(self.mismatch("a float")),
        }
    }
    fn serialize_char(self, v: char) -> Result<(), CellError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), CellError> {
        match self.0 {
            Builder::Text(b) => {
                b.append_value(v);
                Ok(())
            }
            _ => Err(self.mismatch("a string")),
        }
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), CellError> {
        Err(self.mismatch("bytes"))
    }
    fn serialize_none(self) -> Result<(), CellError> {
        self.0.append_null();
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), CellError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), CellError> {
        Err(self.mismatch("a unit"))
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), CellError> {
        Err(self.mismatch("a unit struct"))
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), CellError> {
        Err(self.mismatch("an enum variant"))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), CellError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), CellError> {
        Err(self.mismatch("an enum variant"))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<PutSeq<'a>, CellError> {
        match self.0 {
            Builder::List { .. } => Ok(PutSeq(self.0)),
            _ => Err(self.mismatch("a list")),
        }
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, CellError> {
        Err(self.mismatch("a tuple"))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, CellError> {
        Err(self.mismatch("a tuple"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, CellError> {
        Err(self.mismatch("an enum variant"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, CellError> {
        Err(self.mismatch("a map"))
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, CellError> {
        Err(self.mismatch("a struct"))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, CellError> {
        Err(self.mismatch("an enum variant"))
    }
}

/// The elements of one list value, appended to the list column's values.
struct PutSeq<'a>(&'a mut Builder);

impl ser::SerializeSeq for PutSeq<'_> {
    type Ok = ();
    type Error = CellError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), CellError> {
        match self.0 {
            Builder::List { values, .. } => value.serialize(Put(values)),
            _ => unreachable!("PutSeq is made for list columns only"),
        }
    }
    fn end(self) -> Result<(), CellError> {
        if let Builder::List {
            offsets,
            valid,
            values,
            ..
        } = self.0
        {
            let end = i32::try_from(values.len())
                .map_err(|_| CellError("a list column holds too many values".into()))?;
            offsets.push(end);
            valid.push(true);
        }
        Ok(())
    }
}

/// One row's values, column by column, into the batch being gathered.
struct Append<'a> {
    columns: &'a mut [Builder],
    next: usize,
}

impl Cells for Append<'_> {
    type Ok = ();
    type Error = CellError;
    fn serialize_field<T: Cell + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), CellError> {
        let builder = self
            .columns
            .get_mut(self.next)
            .ok_or_else(|| CellError(format!("column {name} is not in the schema")))?;
        self.next += 1;
        value
            .serialize(Put(builder))
            .map_err(|e| CellError(format!("column {name}: {e}")))
    }
    fn end(self) -> Result<(), CellError> {
        Ok(())
    }
}

/// `FILE.parquet` as `FILE-20261201T101500Z.parquet`: the file opened at `ns`.
pub fn rotated_path(path: &Path, ns: u64) -> PathBuf {
    let stamp = chrono::DateTime::from_timestamp_nanos(ns as i64).format("%Y%m%dT%H%M%SZ");
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{stamp}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{stamp}"),
    };
    path.with_file_name(name)
}

fn wall_clock_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn parquet_error(path: &Path, err: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{}: {err}", path.display()))
}

/// An open Parquet file.
struct Open {
    path: PathBuf,
    writer: ArrowWriter<File>,
    opened_ns: u64,
}

/// A Parquet file of rows of one kind; with a rotation period, a series of them. The rows
/// come through [`super::RowsFile`], which picks them by kind.
pub struct ParquetFile {
    path: PathBuf,
    rotate_ns: Option<u64>,
    schema: SchemaRef,
    columns: Vec<Builder>,
    buffered: usize,
    open: Option<Open>,
}

impl ParquetFile {
    /// Creates `path` (with `rotate`: the first file of the series named after `path`).
    pub fn create(rows: Rows, path: &Path, rotate: Option<Duration>) -> io::Result<ParquetFile> {
        let columns = rows
            .columns()
            .ok_or_else(|| io::Error::other(format!("{rows:?} have no Parquet form")))?;
        let mut file = ParquetFile {
            path: path.to_path_buf(),
            rotate_ns: rotate.map(|every| every.as_nanos() as u64),
            schema: Arc::new(arrow_schema(&columns)),
            columns: columns.iter().map(|c| Builder::new(&c.kind)).collect(),
            buffered: 0,
            open: None,
        };
        file.open(wall_clock_ns())?;
        Ok(file)
    }

    fn open(&mut self, now_ns: u64) -> io::Result<()> {
        let path = match self.rotate_ns {
            Some(_) => rotated_path(&self.path, now_ns),
            None => self.path.clone(),
        };
        let file = File::create(&path).map_err(|e| {
            io::Error::new(e.kind(), format!("{}: cannot write: {e}", path.display()))
        })?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
            .build();
        let writer = ArrowWriter::try_new(file, self.schema.clone(), Some(properties))
            .map_err(|e| parquet_error(&path, e))?;
        self.open = Some(Open {
            path,
            writer,
            opened_ns: now_ns,
        });
        Ok(())
    }

    pub fn write<R>(&mut self, record: &R) -> io::Result<()>
    where
        for<'a> Row<'a, R>: Columns,
    {
        let row = Row {
            record,
            style: Style::Parquet,
        };
        row.columns(Append {
            columns: &mut self.columns,
            next: 0,
        })
        .map_err(|e| parquet_error(&self.path, e))?;
        self.buffered += 1;
        if self.buffered >= BATCH_ROWS {
            self.write_batch()?;
        }
        Ok(())
    }

    /// Hands the gathered rows to the writer as one record batch.
    fn write_batch(&mut self) -> io::Result<()> {
        if self.buffered == 0 {
            return Ok(());
        }
        self.buffered = 0;
        let Some(open) = &mut self.open else {
            return Ok(());
        };
        let arrays = self
            .columns
            .iter_mut()
            .map(Builder::finish)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| parquet_error(&open.path, e))?;
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| parquet_error(&open.path, e))?;
        open.writer
            .write(&batch)
            .map_err(|e| parquet_error(&open.path, e))
    }

    /// Live capture: when the period is over, closes the file and opens the next one.
    pub fn tick(&mut self, now_ns: u64) -> io::Result<()> {
        let due = match (self.rotate_ns, &self.open) {
            (Some(every), Some(open)) => now_ns >= open.opened_ns.saturating_add(every),
            _ => false,
        };
        if due {
            self.close()?;
            self.open(now_ns)?;
        }
        Ok(())
    }

    /// Writes the rows still gathered and the footer: the file is readable from now on.
    pub fn close(&mut self) -> io::Result<()> {
        self.write_batch()?;
        if let Some(open) = self.open.take() {
            open.writer
                .close()
                .map_err(|e| parquet_error(&open.path, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ConnectionRecord, Flag, FlagSet, TransactionRecord};
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampNanosecondType};
    use arrow_array::{Array, ListArray};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("kascope-unit-{}-{name}", std::process::id()))
    }

    #[test]
    fn times_keep_their_nanoseconds_and_unknowns_are_typed_nulls() {
        let path = temp("ns.parquet");
        let mut sink = ParquetFile::create(Rows::Connections, &path, None).unwrap();
        let mut record = ConnectionRecord::blank();
        record.first_ts = 1_700_000_000_123_456_789;
        record.close_ts = None;
        record.flags = [Flag::MidStream, Flag::Gap].into_iter().collect();
        sink.write(&record).unwrap();
        record.flags = FlagSet::default();
        record.close_ts = Some(1_700_000_001_000_000_001);
        sink.write(&record).unwrap();
        sink.close().unwrap();

        let file = File::open(&path).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let expected = arrow_schema(&Rows::Connections.columns().unwrap());
        assert_eq!(reader.schema().fields(), expected.fields());
        let batch = reader.build().unwrap().next().unwrap().unwrap();
        std::fs::remove_file(&path).unwrap();
        let column = |name: &str| batch.column_by_name(name).unwrap().clone();
        let first = column("first_ts");
        let first = first.as_primitive::<TimestampNanosecondType>();
        assert_eq!(first.value(0), 1_700_000_000_123_456_789);
        let close = column("close_ts");
        let close = close.as_primitive::<TimestampNanosecondType>();
        assert!(close.is_null(0));
        assert_eq!(close.value(1), 1_700_000_001_000_000_001);
        let flags = column("flags");
        let flags: &ListArray = flags.as_list();
        let names: Vec<String> = flags
            .value(0)
            .as_string::<i32>()
            .iter()
            .map(|s| s.unwrap().to_string())
            .collect();
        assert_eq!(names, ["mid-stream", "gap"]);
        assert_eq!(flags.value(1).len(), 0);
        assert!(!flags.is_null(1), "no flags is an empty list, not unknown");
        let race = column("race_request");
        assert!(race.as_primitive::<Int64Type>().is_null(0));
    }

    #[test]
    fn rows_leave_memory_in_bounded_row_groups() {
        let path = temp("groups.parquet");
        let mut sink = ParquetFile::create(Rows::Transactions, &path, None).unwrap();
        let rows = 2 * ROW_GROUP_ROWS + 10;
        let mut record = TransactionRecord::blank();
        for position in 0..rows {
            record.position = position as u32;
            sink.write(&record).unwrap();
            assert!(sink.buffered < BATCH_ROWS);
        }
        sink.close().unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        let groups: Vec<i64> = reader
            .metadata()
            .row_groups()
            .iter()
            .map(|group| group.num_rows())
            .collect();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(groups, [ROW_GROUP_ROWS as i64, ROW_GROUP_ROWS as i64, 10]);
    }

    #[test]
    fn rotated_files_are_named_by_their_start_in_utc() {
        let at = 1_764_590_100_000_000_000;
        assert_eq!(
            rotated_path(Path::new("shards/conns.parquet"), at),
            Path::new("shards/conns-20251201T115500Z.parquet")
        );
        assert_eq!(
            rotated_path(Path::new("tx"), at),
            Path::new("tx-20251201T115500Z")
        );
    }
}
