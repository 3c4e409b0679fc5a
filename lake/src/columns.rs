//! Arrow builders for a contract's columns, derived from the table's Arrow
//! fields (one definition: [`crate::contract::Contract::columns`]), filled
//! from the [`Datum`]s of valid records.

use std::sync::Arc;

use arrow::array::builder::NullBufferBuilder;
use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, ListArray,
    NullArray, StringBuilder, StructArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, TimeUnit};

use crate::decoder::Datum;

/// The builder of one column, nested like its type.
pub enum Column {
    Boolean(BooleanBuilder),
    Integer(Int64Builder),
    Number(Float64Builder),
    String(StringBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    /// Always null (`"type": "null"`): only the row count.
    Null(usize),
    Struct {
        fields: Fields,
        children: Vec<Column>,
        validity: NullBufferBuilder,
    },
    List {
        item: FieldRef,
        offsets: Vec<i32>,
        validity: NullBufferBuilder,
        items: Box<Column>,
    },
}

impl Column {
    /// The builder for a column of `data_type` (the types a contract's
    /// columns have).
    pub fn new(data_type: &DataType) -> Column {
        match data_type {
            DataType::Boolean => Column::Boolean(BooleanBuilder::new()),
            DataType::Int64 => Column::Integer(Int64Builder::new()),
            DataType::Float64 => Column::Number(Float64Builder::new()),
            DataType::Utf8 => Column::String(StringBuilder::new()),
            DataType::Timestamp(TimeUnit::Microsecond, tz) => {
                Column::Timestamp(TimestampMicrosecondBuilder::new().with_timezone_opt(tz.clone()))
            }
            DataType::Date32 => Column::Date(Date32Builder::new()),
            DataType::Null => Column::Null(0),
            DataType::Struct(fields) => Column::Struct {
                fields: fields.clone(),
                children: fields.iter().map(|f| Column::new(f.data_type())).collect(),
                validity: NullBufferBuilder::new(0),
            },
            DataType::List(item) => Column::List {
                item: item.clone(),
                offsets: vec![0],
                validity: NullBufferBuilder::new(0),
                items: Box::new(Column::new(item.data_type())),
            },
            other => unreachable!("a contract has no column of type {other}"),
        }
    }

    /// The builders of a table's columns.
    pub fn for_fields(fields: &[Field]) -> Vec<Column> {
        fields.iter().map(|f| Column::new(f.data_type())).collect()
    }

    /// Appends the value whose datums start at `datums[at]`; returns the
    /// index after them. Inlined for the scalars, which are most columns.
    #[inline]
    pub fn append(&mut self, datums: &[Datum], at: usize) -> usize {
        match (self, &datums[at]) {
            (Column::String(b), Datum::Str(v)) => b.append_value(v),
            (Column::Integer(b), Datum::Int(v)) => b.append_value(*v),
            (Column::Number(b), Datum::Float(v)) => b.append_value(*v),
            (Column::Timestamp(b), Datum::Micros(v)) => b.append_value(*v),
            (Column::Boolean(b), Datum::Bool(v)) => b.append_value(*v),
            (Column::Date(b), Datum::Day(v)) => b.append_value(*v),
            (column, _) => return column.append_other(datums, at),
        }
        at + 1
    }

    /// [`Column::append`] of a null, a struct or a list.
    fn append_other(&mut self, datums: &[Datum], at: usize) -> usize {
        let datum = &datums[at];
        if matches!(datum, Datum::Null) {
            self.append_null();
            return at + 1;
        }
        match (self, datum) {
            (
                Column::Struct {
                    children, validity, ..
                },
                Datum::Struct,
            ) => {
                validity.append_non_null();
                children
                    .iter_mut()
                    .fold(at + 1, |at, child| child.append(datums, at))
            }
            (
                Column::List {
                    offsets,
                    validity,
                    items,
                    ..
                },
                Datum::List(n),
            ) => {
                validity.append_non_null();
                let at = (0..*n).fold(at + 1, |at, _| items.append(datums, at));
                offsets.push(items.len() as i32);
                at
            }
            (_, datum) => unreachable!("the decoder's datum {datum:?} fits its column"),
        }
    }

    fn append_null(&mut self) {
        match self {
            Column::Boolean(b) => b.append_null(),
            Column::Integer(b) => b.append_null(),
            Column::Number(b) => b.append_null(),
            Column::String(b) => b.append_null(),
            Column::Timestamp(b) => b.append_null(),
            Column::Date(b) => b.append_null(),
            Column::Null(n) => *n += 1,
            // A null struct still has a slot in each child.
            Column::Struct {
                children, validity, ..
            } => {
                validity.append_null();
                children.iter_mut().for_each(Column::append_null);
            }
            Column::List {
                offsets,
                validity,
                items,
                ..
            } => {
                validity.append_null();
                offsets.push(items.len() as i32);
            }
        }
    }

    /// Rows appended since the last `finish`.
    pub fn len(&self) -> usize {
        match self {
            Column::Boolean(b) => b.len(),
            Column::Integer(b) => b.len(),
            Column::Number(b) => b.len(),
            Column::String(b) => b.len(),
            Column::Timestamp(b) => b.len(),
            Column::Date(b) => b.len(),
            Column::Null(n) => *n,
            Column::Struct { validity, .. } => validity.len(),
            Column::List { offsets, .. } => offsets.len() - 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The column so far, leaving the builder empty.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Boolean(b) => Arc::new(b.finish()),
            Column::Integer(b) => Arc::new(b.finish()),
            Column::Number(b) => Arc::new(b.finish()),
            Column::String(b) => Arc::new(b.finish()),
            Column::Timestamp(b) => Arc::new(b.finish()),
            Column::Date(b) => Arc::new(b.finish()),
            Column::Null(n) => Arc::new(NullArray::new(std::mem::take(n))),
            Column::Struct {
                fields,
                children,
                validity,
            } => {
                let rows = validity.len();
                let arrays: Vec<ArrayRef> = children.iter_mut().map(Column::finish).collect();
                if arrays.is_empty() {
                    return Arc::new(StructArray::new_empty_fields(rows, validity.finish()));
                }
                Arc::new(StructArray::new(fields.clone(), arrays, validity.finish()))
            }
            Column::List {
                item,
                offsets,
                validity,
                items,
            } => {
                let offsets = std::mem::replace(offsets, vec![0]);
                let values = items.finish();
                Arc::new(ListArray::new(
                    item.clone(),
                    OffsetBuffer::new(offsets.into()),
                    values,
                    validity.finish(),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Contract;
    use crate::decoder::{Decoder, Record};
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Int64Type;
    use arrow::record_batch::RecordBatch;

    /// Orders (nested structs and lists) decoded and appended: the columns
    /// read back as the records wrote them, nulls included.
    #[test]
    fn nested_columns_hold_what_records_wrote() {
        let contract = Contract::parse(
            "t.json",
            br#"{
                "x-lakehouse": {"table": "t", "event_time": "at"},
                "type": "object",
                "properties": {
                    "at": {"type": "string", "format": "date-time"},
                    "items": {"type": "array", "items": {
                        "type": "object",
                        "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
                        "required": ["sku"]
                    }},
                    "ship": {"type": ["object", "null"], "properties": {"zip": {"type": "string"}}}
                },
                "required": ["at"]
            }"#,
        )
        .expect("compiles");
        let fields = contract.columns();
        let decoder = Decoder::new(contract);
        let mut columns = Column::for_fields(&fields);
        for text in [
            r#"{"at":"2026-01-01T00:00:00Z","items":[{"sku":"a","qty":2},{"sku":"b"}],"ship":{"zip":"1"}}"#,
            r#"{"at":"2026-01-01T00:00:00Z","ship":null}"#,
            r#"{"at":"2026-01-01T00:00:00Z","items":[],"x":1}"#,
        ] {
            let mut record = Record::default();
            decoder.decode_text(text, &mut record).expect("valid");
            let end = columns
                .iter_mut()
                .fold(0, |at, column| column.append(record.datums(), at));
            assert_eq!(end, record.datums().len(), "{text}");
        }
        let arrays: Vec<ArrayRef> = columns.iter_mut().map(Column::finish).collect();
        let batch = RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), arrays)
            .expect("the arrays fit the schema");
        let items = batch.column(1).as_list::<i32>();
        assert_eq!(items.value_length(0), 2);
        assert!(items.is_null(1));
        assert_eq!(items.value_length(2), 0);
        let first = items.value(0);
        let first = first.as_struct();
        assert_eq!(first.column(0).as_string::<i32>().value(1), "b");
        let qty = first.column(1).as_primitive::<Int64Type>();
        assert_eq!((qty.value(0), qty.is_null(1)), (2, true));
        let ship = batch.column(2).as_struct();
        assert!(ship.is_valid(0) && ship.is_null(1) && ship.is_null(2));
        let extra = batch.column(3).as_string::<i32>();
        assert!(extra.is_null(0));
        assert_eq!(extra.value(2), r#"{"x":1}"#);
    }
}
