//! Takings in the income system's terms: a service's posting codes, the row each payment or refund
//! becomes (fund, method of payment, VAT, account reference), and a batch's control figures.

pub mod batch;
pub mod document;

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::card_guard::contains_card_number;
use super::ledger::LineKind;

/// The income system's field limits a row must keep within (LocalGov IMS's columns; a file
/// import has none beyond what its layout says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldLimits {
    pub office_code: usize,
    pub fund_code: usize,
    pub mop_code: usize,
    pub vat_code: usize,
    pub account_reference: usize,
    pub narrative: usize,
    pub batch_reference: usize,
}

impl FieldLimits {
    /// `PendingTransactionModel`'s `maxLength`s in LocalGov IMS's published document: the
    /// system's own columns, so processed rows keep within them too.
    pub const LOCALGOV_IMS: FieldLimits = FieldLimits {
        office_code: 2,
        fund_code: 5,
        mop_code: 5,
        vat_code: 2,
        account_reference: 30,
        narrative: 100,
        batch_reference: 30,
    };

    /// A file import: nothing is cut but the narrative, kept to a line's worth.
    pub const FILE: FieldLimits = FieldLimits {
        office_code: 64,
        fund_code: 64,
        mop_code: 64,
        vat_code: 64,
        account_reference: 64,
        narrative: 100,
        batch_reference: 30,
    };
}

/// Where a row's account reference comes from: literal text around the CRM's reference
/// (`{request_ref}`) or a metadata value the CRM sent (`{metadata.<key>}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountReferenceTemplate {
    parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TemplatePart {
    Text(String),
    RequestRef,
    Metadata(String),
}

impl AccountReferenceTemplate {
    /// Reads `PCN{metadata.pcn}` or `{request_ref}`; anything else in braces is refused.
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(TemplatePart::Text(rest[..open].to_owned()));
            }
            let close = rest[open..].find('}').ok_or("a `{` is not closed by `}`")? + open;
            let name = &rest[open + 1..close];
            parts.push(match name.strip_prefix("metadata.") {
                Some(key) if !key.is_empty() => TemplatePart::Metadata(key.to_owned()),
                _ if name == "request_ref" => TemplatePart::RequestRef,
                _ => {
                    return Err(format!(
                        "`{{{name}}}` is not a field: use {{request_ref}} or {{metadata.<key>}}"
                    ))
                }
            });
            rest = &rest[close + 1..];
        }
        if rest.contains('}') {
            return Err("a `}` has no `{`".into());
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Text(rest.to_owned()));
        }
        if !parts.iter().any(|p| !matches!(p, TemplatePart::Text(_))) {
            return Err("names no field: every payment would share one account".into());
        }
        Ok(Self { parts })
    }

    /// The reference for one payment, or `None` when a metadata key it names was not sent (or
    /// has since been erased).
    pub fn render(&self, request_ref: &str, metadata: &BTreeMap<String, String>) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Text(text) => out.push_str(text),
                TemplatePart::RequestRef => out.push_str(request_ref),
                TemplatePart::Metadata(key) => match metadata.get(key)? {
                    // Pseudonymised by the retention sweep: no longer anyone's account.
                    erased if erased == super::retention::ERASED => return None,
                    value => out.push_str(value),
                },
            }
        }
        Some(out)
    }

    /// The literal text's length: what every rendered reference is at least.
    pub fn fixed_len(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                TemplatePart::Text(text) => text.chars().count(),
                _ => 0,
            })
            .sum()
    }
}

/// How a service's takings are coded in the income system.
#[derive(Debug, Clone, PartialEq)]
pub struct PostingCodes {
    /// The service's name, which each row's narrative begins with.
    pub service_name: String,
    pub fund_code: String,
    pub office_code: String,
    /// Method-of-payment codes per provider (`govuk_pay`, `stripe`): card, and wallet if the
    /// council codes wallets apart.
    pub mop_codes: BTreeMap<String, MopCodes>,
    pub vat_code: String,
    /// The VAT rate in basis points: 2000 is 20%.
    pub vat_rate_basis_points: u32,
    /// Whether a row's `Amount` is the gross (VAT included) or the net, VAT beside it.
    pub amounts_include_vat: bool,
    pub account_reference: AccountReferenceTemplate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MopCodes {
    pub card: String,
    #[serde(default)]
    pub wallet: Option<String>,
}

/// A succeeded payment or refund not yet in any batch: what a row is made from.
#[derive(Debug, Clone, PartialEq)]
pub struct PostingSource {
    pub kind: LineKind,
    /// The payment's id, or the refund's.
    pub line_id: String,
    pub payment_id: String,
    pub refund_id: Option<String>,
    /// When the money moved, UTC.
    pub at: DateTime<Utc>,
    pub service: String,
    pub provider: String,
    pub request_ref: String,
    pub metadata: BTreeMap<String, String>,
    pub provider_reference: Option<String>,
    /// Pence; refunds negative.
    pub amount: i64,
}

/// One row of a batch, as posted: frozen when the batch is built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostingRow {
    pub line_number: i64,
    pub kind: String,
    pub line_id: String,
    pub payment_id: String,
    pub refund_id: Option<String>,
    pub service: String,
    pub at: DateTime<Utc>,
    /// Pence, VAT included; refunds negative.
    pub gross: i64,
    /// Pence of VAT within `gross` (same sign).
    pub vat_amount: i64,
    pub fund_code: String,
    pub mop_code: String,
    pub vat_code: String,
    pub vat_rate_basis_points: i64,
    pub amounts_include_vat: bool,
    pub office_code: String,
    pub account_reference: String,
    /// The account reference could not be made (a metadata key missing, or too long for the
    /// income system): the row went to the suspense account for a person to allocate.
    pub unallocated: bool,
    pub narrative: String,
    pub psp_reference: Option<String>,
}

impl PostingRow {
    /// What the row's `Amount` says: the gross, or the net when amounts exclude VAT.
    pub fn posted_amount(&self) -> i64 {
        if self.amounts_include_vat {
            self.gross
        } else {
            self.gross - self.vat_amount
        }
    }
}

/// The VAT inside `gross` pence at `basis_points` (2000 = 20%), rounded half away from zero; a
/// refund's VAT is its payment's, negated, so a full refund cancels exactly.
pub fn vat_within(gross: i64, basis_points: u32) -> i64 {
    let bp = i128::from(basis_points);
    let abs = i128::from(gross).abs();
    let denominator = 10_000 + bp;
    let vat = (abs * bp * 2 + denominator) / (denominator * 2);
    let vat = i64::try_from(vat).expect("VAT is less than the amount");
    if gross < 0 {
        -vat
    } else {
        vat
    }
}

/// Shortens `text` to at most `limit` characters.
fn within(text: &str, limit: usize) -> String {
    text.chars().take(limit).collect()
}

/// The row a payment or refund becomes under its service's codes. An account reference that
/// cannot be made, or is longer than the income system takes, is never cut short (a cut
/// reference is someone else's account): the row goes to `suspense` and says so.
pub fn posting_row(
    source: &PostingSource,
    codes: &PostingCodes,
    suspense: &str,
    limits: &FieldLimits,
    line_number: i64,
) -> PostingRow {
    let mop = codes.mop_codes.get(&source.provider);
    let mop_code = mop.map(|m| m.card.clone()).unwrap_or_default();
    // A reference the template glued into what reads as a card number (a numeric prefix before
    // a numeric CRM reference, say) would be refused at every exit, and with it the whole day's
    // batch: it goes to suspense instead, so the money is still posted.
    let reference = codes
        .account_reference
        .render(&source.request_ref, &source.metadata)
        .filter(|r| !r.trim().is_empty() && r.chars().count() <= limits.account_reference)
        .filter(|r| !contains_card_number(r));
    let what = match source.kind {
        LineKind::Payment => "payment",
        LineKind::Refund => "refund",
    };
    PostingRow {
        line_number,
        kind: source.kind.as_str().to_owned(),
        line_id: source.line_id.clone(),
        payment_id: source.payment_id.clone(),
        refund_id: source.refund_id.clone(),
        service: source.service.clone(),
        at: source.at,
        gross: source.amount,
        vat_amount: vat_within(source.amount, codes.vat_rate_basis_points),
        fund_code: codes.fund_code.clone(),
        mop_code,
        vat_code: codes.vat_code.clone(),
        vat_rate_basis_points: i64::from(codes.vat_rate_basis_points),
        amounts_include_vat: codes.amounts_include_vat,
        office_code: codes.office_code.clone(),
        unallocated: reference.is_none(),
        account_reference: reference.unwrap_or_else(|| suspense.to_owned()),
        narrative: narrative(codes, what, &source.request_ref, limits),
        psp_reference: source.provider_reference.clone(),
    }
}

/// A row's narrative: the service, what it is, and the CRM's reference, unless cutting it to the
/// column or joining it to the service's name makes something that reads as a card number.
fn narrative(codes: &PostingCodes, what: &str, request_ref: &str, limits: &FieldLimits) -> String {
    let full = within(
        &format!("{} {what} {request_ref}", codes.service_name),
        limits.narrative,
    );
    if contains_card_number(&full) {
        within(&format!("{} {what}", codes.service_name), limits.narrative)
    } else {
        full
    }
}

/// A batch's control figures: how many rows, and their gross sum in pence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ControlTotals {
    pub rows: i64,
    pub total: i64,
}

impl ControlTotals {
    pub fn of(rows: &[PostingRow]) -> Self {
        Self {
            rows: rows.len() as i64,
            total: rows.iter().map(|r| r.gross).sum(),
        }
    }
}

/// A month the income system posts into, `YYYY-MM`.
pub fn period_of(day: NaiveDate) -> String {
    format!("{:04}-{:02}", day.year(), day.month())
}

/// `2026-12` as people say it: `December 2026` (anything else as it is).
pub fn period_name(period: &str) -> String {
    NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d")
        .map(|d| d.format("%B %Y").to_string())
        .unwrap_or_else(|_| period.to_owned())
}

/// The month after `period` (`2026-12` → `2027-01`).
pub fn next_period(period: &str) -> Option<String> {
    let day = NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d").ok()?;
    Some(period_of(day.checked_add_months(chrono::Months::new(1))?))
}

/// The first period from `day`'s month on that is not locked: where a batch built for `day`
/// posts (late items after a month-end lock land in the next open month).
pub fn open_period(day: NaiveDate, locked: &[String]) -> String {
    let mut period = period_of(day);
    while locked.contains(&period) {
        match next_period(&period) {
            Some(next) => period = next,
            None => break,
        }
    }
    period
}

/// A batch's reference in the income system: `CF` then the account's number and the batch's,
/// e.g. `CF-parking-000042`, within `limit` characters.
pub fn batch_reference(account: &str, number: i64, limit: usize) -> String {
    let suffix = format!("-{number:06}");
    let room = limit.saturating_sub(3 + suffix.len());
    format!("CF-{}{suffix}", within(account, room))
}

#[cfg(test)]
mod tests;
