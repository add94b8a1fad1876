//! The document a batch is written as, byte for byte the same on every download: a LocalGov IMS
//! `TransactionImport` body, or a file in a layout the council's import reads; and its checksum.

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::PostingRow;
use crate::domain::ledger::{pounds, reads_as_formula};

/// How a batch is written, frozen with it when it is built (a later change of settings never
/// alters a batch already built).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum Layout {
    /// LocalGov IMS's `POST /api/TransactionImport` body.
    LocalgovIms {
        import_type_id: i32,
        user_code: i32,
    },
    File(FileLayout),
}

/// A file import's layout: its columns in order, their titles, the date and amount formats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLayout {
    pub columns: Vec<FileColumn>,
    /// A first line of column titles.
    #[serde(default = "yes")]
    pub header: bool,
    #[serde(default = "comma")]
    pub delimiter: char,
    /// `strftime` pattern for dates, e.g. `%d/%m/%Y`.
    #[serde(default = "iso_date")]
    pub date_format: String,
    #[serde(default)]
    pub amount_format: AmountFormat,
}

fn yes() -> bool {
    true
}
fn comma() -> char {
    ','
}
fn iso_date() -> String {
    "%Y-%m-%d".into()
}

/// A column: a field of the row, or the same text on every row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileColumn {
    pub title: String,
    #[serde(default)]
    pub field: Option<Field>,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmountFormat {
    /// `12.50`, `-3.00`
    #[default]
    Pounds,
    /// `1250`, `-300`
    Pence,
}

/// What a file column can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    BatchReference,
    LineNumber,
    TransactionDate,
    EntryDate,
    AccountReference,
    FundCode,
    MopCode,
    VatCode,
    VatRate,
    VatAmount,
    /// The gross or net, as the service's codes say (`amounts_include_vat`).
    Amount,
    Gross,
    Net,
    Narrative,
    InternalReference,
    PspReference,
    OfficeCode,
    Service,
    Kind,
}

impl FileLayout {
    /// What is wrong with the layout, if anything (named for the settings' key).
    pub fn problem(&self) -> Option<String> {
        if self.columns.is_empty() {
            return Some("columns: at least one column is needed".into());
        }
        for (i, column) in self.columns.iter().enumerate() {
            if column.field.is_some() == column.text.is_some() {
                return Some(format!(
                    "columns[{i}]: give either `field` or `text`, not both or neither"
                ));
            }
        }
        if ['"', '\r', '\n'].contains(&self.delimiter) {
            return Some("delimiter: cannot be a quote or a line break".into());
        }
        let items: Vec<_> = StrftimeItems::new(&self.date_format).collect();
        if items.is_empty() || items.contains(&Item::Error) {
            return Some(format!(
                "date_format: `{}` is not a date pattern",
                self.date_format
            ));
        }
        None
    }
}

/// What a batch is besides its rows: its reference and when it was built (the entry date).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchHeading<'a> {
    pub reference: &'a str,
    pub built_at: DateTime<Utc>,
}

/// The batch written out in its layout.
pub fn render(layout: &Layout, heading: &BatchHeading<'_>, rows: &[PostingRow]) -> Vec<u8> {
    match layout {
        Layout::LocalgovIms {
            import_type_id,
            user_code,
        } => serde_json::to_vec(&transaction_import(
            *import_type_id,
            *user_code,
            heading,
            rows,
        ))
        .expect("JSON of plain values"),
        Layout::File(file) => render_file(file, heading, rows).into_bytes(),
    }
}

/// The SHA-256 of a document, in hex: what a download is checked against.
pub fn checksum(document: &[u8]) -> String {
    hex::encode(Sha256::digest(document))
}

/// LocalGov IMS's `TransactionImport` body for `rows`.
pub fn transaction_import(
    import_type_id: i32,
    user_code: i32,
    heading: &BatchHeading<'_>,
    rows: &[PostingRow],
) -> Value {
    json!({
        "ImportTypeId": import_type_id,
        "Notes": format!("Counterfoil batch {}", heading.reference),
        "NumberOfRows": rows.len(),
        "Rows": rows.iter().map(|row| processed_transaction(user_code, heading, row)).collect::<Vec<_>>(),
        "Errors": [],
    })
}

/// One `ProcessedTransactionModel`: only the document's fields, each within its limits.
pub fn processed_transaction(
    user_code: i32,
    heading: &BatchHeading<'_>,
    row: &PostingRow,
) -> Value {
    let mut model = Map::new();
    let mut put = |key: &str, value: Value| {
        model.insert(key.to_owned(), value);
    };
    put("InternalReference", json!(row.line_id));
    put("PspReference", json!(row.psp_reference));
    put("OfficeCode", json!(row.office_code));
    put("EntryDate", json!(timestamp(heading.built_at)));
    put("TransactionDate", json!(timestamp(row.at)));
    put("AccountReference", json!(row.account_reference));
    put("UserCode", json!(user_code));
    put("FundCode", json!(row.fund_code));
    put("MopCode", json!(row.mop_code));
    put("Amount", decimal_pounds(row.posted_amount()));
    put("VatCode", json!(row.vat_code));
    put("VatRate", vat_rate(row.vat_rate_basis_points));
    put("VatAmount", decimal_pounds(row.vat_amount));
    put("Narrative", json!(row.narrative));
    put("BatchReference", json!(heading.reference));
    Value::Object(model)
}

/// Pence as a JSON number of pounds with two decimals' precision (`1250` → `12.5`): the text
/// is parsed from the exact decimal, never computed in floating point.
fn decimal_pounds(pence: i64) -> Value {
    serde_json::from_str(&pounds(pence)).expect("pounds() writes a JSON number")
}

/// Basis points as the fraction the document's `VatRate` holds (`2000` → `0.2`).
fn vat_rate(basis_points: i64) -> Value {
    let text = format!("{}.{:04}", basis_points / 10_000, basis_points % 10_000);
    serde_json::from_str(&text).expect("a decimal")
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn render_file(layout: &FileLayout, heading: &BatchHeading<'_>, rows: &[PostingRow]) -> String {
    let mut out = String::new();
    let delimiter = layout.delimiter;
    let mut line = |cells: Vec<(String, bool)>| {
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.push(delimiter);
            }
            push_cell(&mut out, cell, delimiter);
        }
        out.push_str("\r\n");
    };
    if layout.header {
        line(
            layout
                .columns
                .iter()
                .map(|c| (c.title.clone(), true))
                .collect(),
        );
    }
    for row in rows {
        line(
            layout
                .columns
                .iter()
                .map(|column| match (&column.text, column.field) {
                    (Some(text), _) => (text.clone(), true),
                    (None, Some(field)) => file_cell(layout, heading, row, field),
                    (None, None) => (String::new(), false),
                })
                .collect(),
        );
    }
    out
}

/// A cell, quoted when it holds the delimiter, a quote or a line break; text that came from
/// outside (the CRM's references) is kept from reading as a spreadsheet formula, while our own
/// amounts and dates are written as they are (`-12.50` stays a number).
fn push_cell(out: &mut String, (cell, outside): &(String, bool), delimiter: char) {
    let neutralise = *outside && reads_as_formula(cell);
    let quoted = cell.contains([delimiter, '"', '\n', '\r']);
    if quoted {
        out.push('"');
    }
    if neutralise {
        out.push('\'');
    }
    if quoted {
        out.push_str(&cell.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(cell);
    }
}

/// A row's cell for `field`, and whether its text came from outside Counterfoil.
fn file_cell(
    layout: &FileLayout,
    heading: &BatchHeading<'_>,
    row: &PostingRow,
    field: Field,
) -> (String, bool) {
    let amount = |pence: i64| match layout.amount_format {
        AmountFormat::Pounds => pounds(pence),
        AmountFormat::Pence => pence.to_string(),
    };
    let date = |at: DateTime<Utc>| {
        crate::domain::ledger::london_day(at)
            .format(&layout.date_format)
            .to_string()
    };
    let ours = |text: String| (text, false);
    match field {
        Field::AccountReference => (row.account_reference.clone(), true),
        Field::Narrative => (row.narrative.clone(), true),
        Field::PspReference => (row.psp_reference.clone().unwrap_or_default(), true),
        Field::BatchReference => ours(heading.reference.to_owned()),
        Field::LineNumber => ours(row.line_number.to_string()),
        Field::TransactionDate => ours(date(row.at)),
        Field::EntryDate => ours(date(heading.built_at)),
        Field::FundCode => ours(row.fund_code.clone()),
        Field::MopCode => ours(row.mop_code.clone()),
        Field::VatCode => ours(row.vat_code.clone()),
        Field::VatRate => ours(vat_rate(row.vat_rate_basis_points).to_string()),
        Field::VatAmount => ours(amount(row.vat_amount)),
        Field::Amount => ours(amount(row.posted_amount())),
        Field::Gross => ours(amount(row.gross)),
        Field::Net => ours(amount(row.gross - row.vat_amount)),
        Field::InternalReference => ours(row.line_id.clone()),
        Field::OfficeCode => ours(row.office_code.clone()),
        Field::Service => ours(row.service.clone()),
        Field::Kind => ours(row.kind.clone()),
    }
}
