//! Evidence for the council's PCI DSS self-assessment: a scan of every stored text value for
//! anything that looks like a card number, with the same guard the API uses.

use crate::domain::card_guard;
use crate::store::{Store, StoreError};

/// Where a suspected card number was found. The value itself is never part of a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub table: String,
    pub column: String,
    pub row: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    pub tables: usize,
    pub columns: usize,
    pub values: u64,
    pub findings: Vec<Finding>,
}

/// Scans every text column of every Counterfoil table, streaming rows so memory stays flat.
pub async fn pci_scan(store: &dyn Store) -> Result<ScanReport, StoreError> {
    let columns: Vec<_> = store
        .describe_schema()
        .await?
        .into_iter()
        .filter(|c| c.is_text)
        .collect();
    let mut report = ScanReport {
        columns: columns.len(),
        ..ScanReport::default()
    };
    let mut tables: Vec<&str> = columns.iter().map(|c| c.table.as_str()).collect();
    tables.dedup();
    report.tables = tables.len();
    for column in &columns {
        let mut hits = Vec::new();
        report.values += store
            .scan_text_column(column, &mut |row, value| {
                if card_guard::text_or_json_contains_card_number(value) {
                    hits.push(row.to_owned());
                }
            })
            .await?;
        report.findings.extend(hits.into_iter().map(|row| Finding {
            table: column.table.clone(),
            column: column.column.clone(),
            row,
        }));
    }
    Ok(report)
}
