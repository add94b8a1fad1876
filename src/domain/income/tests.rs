use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeZone, Utc};

use super::document::*;
use super::*;

fn codes(template: &str) -> PostingCodes {
    PostingCodes {
        service_name: "Parking permits".into(),
        fund_code: "PK01".into(),
        office_code: "CC".into(),
        mop_codes: BTreeMap::from([(
            "govuk_pay".to_owned(),
            MopCodes {
                card: "GPC".into(),
                wallet: None,
            },
        )]),
        vat_code: "S".into(),
        vat_rate_basis_points: 2000,
        amounts_include_vat: true,
        account_reference: AccountReferenceTemplate::parse(template).unwrap(),
    }
}

fn source(kind: LineKind, amount: i64, metadata: &[(&str, &str)]) -> PostingSource {
    PostingSource {
        kind,
        line_id: "pay_1".into(),
        payment_id: "pay_1".into(),
        refund_id: None,
        at: Utc.with_ymd_and_hms(2026, 7, 1, 23, 30, 0).unwrap(),
        service: "parking".into(),
        provider: "govuk_pay".into(),
        request_ref: "CRM-42".into(),
        metadata: metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        provider_reference: Some("gp_abc".into()),
        amount,
    }
}

#[test]
fn vat_is_taken_out_of_the_gross_and_a_refund_cancels_its_payment_exactly() {
    assert_eq!(vat_within(1200, 2000), 200);
    assert_eq!(vat_within(-1200, 2000), -200);
    assert_eq!(vat_within(1000, 0), 0);
    // 1001 × 20/120 = 166.83 → 167; 1003 → 167.17 → 167; 5% of 2100 → 100.
    assert_eq!(vat_within(1001, 2000), 167);
    assert_eq!(vat_within(1003, 2000), 167);
    assert_eq!(vat_within(2100, 500), 100);
    // Half away from zero: 21 × 0.2/1.2 = 3.5 → 4.
    assert_eq!(vat_within(21, 2000), 4);
    assert_eq!(vat_within(-21, 2000), -4);
    for gross in 0..5_000 {
        assert_eq!(vat_within(gross, 2000), -vat_within(-gross, 2000));
    }
}

#[test]
fn account_reference_templates_name_only_known_fields() {
    let t = AccountReferenceTemplate::parse("PCN{metadata.pcn}").unwrap();
    let metadata = BTreeMap::from([("pcn".to_owned(), "AB123".to_owned())]);
    assert_eq!(t.render("R1", &metadata).as_deref(), Some("PCNAB123"));
    assert_eq!(t.render("R1", &BTreeMap::new()), None);
    assert_eq!(t.fixed_len(), 3);
    let t = AccountReferenceTemplate::parse("{request_ref}").unwrap();
    assert_eq!(t.render("R1", &metadata).as_deref(), Some("R1"));
    for bad in [
        "{email}",
        "{metadata.}",
        "PCN{request_ref",
        "x}",
        "fixed",
        "",
    ] {
        assert!(AccountReferenceTemplate::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_row_carries_its_services_codes_and_never_a_cut_reference() {
    let row = posting_row(
        &source(LineKind::Payment, 1200, &[("pcn", "AB123")]),
        &codes("{metadata.pcn}"),
        "SUSPENSE",
        &FieldLimits::LOCALGOV_IMS,
        1,
    );
    assert_eq!(
        (
            row.fund_code.as_str(),
            row.mop_code.as_str(),
            row.account_reference.as_str()
        ),
        ("PK01", "GPC", "AB123")
    );
    assert_eq!(
        (row.gross, row.vat_amount, row.unallocated),
        (1200, 200, false)
    );
    assert_eq!(row.narrative, "Parking permits payment CRM-42");

    let missing = posting_row(
        &source(LineKind::Payment, 1200, &[]),
        &codes("{metadata.pcn}"),
        "SUSPENSE",
        &FieldLimits::LOCALGOV_IMS,
        2,
    );
    assert_eq!(
        (missing.account_reference.as_str(), missing.unallocated),
        ("SUSPENSE", true)
    );
    let long = "X".repeat(31);
    let too_long = posting_row(
        &source(LineKind::Payment, 1200, &[("pcn", &long)]),
        &codes("{metadata.pcn}"),
        "SUSPENSE",
        &FieldLimits::LOCALGOV_IMS,
        3,
    );
    assert!(too_long.unallocated);
}

#[test]
fn amounts_exclusive_of_vat_post_the_net_with_the_vat_beside_it() {
    let mut net = codes("{request_ref}");
    net.amounts_include_vat = false;
    let row = posting_row(
        &source(LineKind::Refund, -1200, &[]),
        &net,
        "S",
        &FieldLimits::LOCALGOV_IMS,
        1,
    );
    assert_eq!((row.posted_amount(), row.vat_amount), (-1000, -200));
    assert_eq!(row.narrative, "Parking permits refund CRM-42");
}

#[test]
fn a_locked_month_sends_its_late_items_to_the_next_open_one() {
    let day = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    assert_eq!(open_period(day, &[]), "2026-11");
    assert_eq!(open_period(day, &["2026-11".into()]), "2026-12");
    assert_eq!(
        open_period(day, &["2026-11".into(), "2026-12".into()]),
        "2027-01"
    );
    assert_eq!(next_period("2026-12").as_deref(), Some("2027-01"));
}

#[test]
fn batch_references_fit_the_income_systems_column() {
    assert_eq!(batch_reference("parking", 42, 30), "CF-parking-000042");
    let long = batch_reference(&"a".repeat(64), 1, 30);
    assert_eq!(long.len(), 30);
    assert!(long.ends_with("-000001"));
}

fn rows() -> Vec<PostingRow> {
    let codes = codes("{request_ref}");
    let mut refund = source(LineKind::Refund, -450, &[]);
    refund.line_id = "rfd_1".into();
    refund.refund_id = Some("rfd_1".into());
    refund.request_ref = "=HYPERLINK(1)".into();
    vec![
        posting_row(
            &source(LineKind::Payment, 1250, &[]),
            &codes,
            "S",
            &FieldLimits::LOCALGOV_IMS,
            1,
        ),
        posting_row(&refund, &codes, "S", &FieldLimits::LOCALGOV_IMS, 2),
    ]
}

fn heading() -> BatchHeading<'static> {
    BatchHeading {
        reference: "CF-parking-000001",
        built_at: Utc.with_ymd_and_hms(2026, 7, 2, 1, 0, 0).unwrap(),
    }
}

#[test]
fn a_localgov_ims_import_holds_the_documents_fields_in_pounds() {
    let layout = Layout::LocalgovIms {
        import_type_id: 3,
        user_code: 99,
    };
    let bytes = render(&layout, &heading(), &rows());
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["NumberOfRows"], 2);
    assert_eq!(body["ImportTypeId"], 3);
    let first = &body["Rows"][0];
    assert_eq!(first["Amount"].to_string(), "12.5");
    assert_eq!(first["VatAmount"].to_string(), "2.08");
    assert_eq!(first["VatRate"].to_string(), "0.2");
    assert_eq!(first["TransactionDate"], "2026-07-01T23:30:00Z");
    assert_eq!(first["BatchReference"], "CF-parking-000001");
    assert_eq!(first["InternalReference"], "pay_1");
    assert_eq!(body["Rows"][1]["Amount"].to_string(), "-4.5");
    // The same rows always make the same bytes.
    assert_eq!(
        checksum(&bytes),
        checksum(&render(&layout, &heading(), &rows()))
    );
}

#[test]
fn a_file_uses_its_layouts_columns_dates_and_amounts() {
    let layout = FileLayout {
        columns: vec![
            FileColumn {
                title: "Date".into(),
                field: Some(Field::TransactionDate),
                text: None,
            },
            FileColumn {
                title: "Fund".into(),
                field: Some(Field::FundCode),
                text: None,
            },
            FileColumn {
                title: "Pence".into(),
                field: Some(Field::Amount),
                text: None,
            },
            FileColumn {
                title: "Ref".into(),
                field: Some(Field::AccountReference),
                text: None,
            },
            FileColumn {
                title: "Source".into(),
                field: None,
                text: Some("CF".into()),
            },
        ],
        header: true,
        delimiter: '|',
        date_format: "%d/%m/%Y".into(),
        amount_format: AmountFormat::Pence,
    };
    assert_eq!(layout.problem(), None);
    let text = String::from_utf8(render(&Layout::File(layout), &heading(), &rows())).unwrap();
    // 23:30 UTC on 1 July is 2 July in London; a refund stays a negative number; a CRM
    // reference that reads as a formula does not.
    assert_eq!(
        text,
        "Date|Fund|Pence|Ref|Source\r\n\
         02/07/2026|PK01|1250|CRM-42|CF\r\n\
         02/07/2026|PK01|-450|'=HYPERLINK(1)|CF\r\n"
    );
}

#[test]
fn a_layout_that_cannot_be_written_is_named() {
    let mut layout = FileLayout {
        columns: vec![],
        header: true,
        delimiter: ',',
        date_format: "%Y-%m-%d".into(),
        amount_format: AmountFormat::Pounds,
    };
    assert!(layout.problem().unwrap().starts_with("columns"));
    layout.columns.push(FileColumn {
        title: "A".into(),
        field: Some(Field::Amount),
        text: Some("x".into()),
    });
    assert!(layout.problem().unwrap().starts_with("columns[0]"));
    layout.columns[0].text = None;
    layout.date_format = "%Q".into();
    assert!(layout.problem().unwrap().starts_with("date_format"));
    layout.date_format = "%Y".into();
    layout.delimiter = '"';
    assert!(layout.problem().unwrap().starts_with("delimiter"));
}

#[test]
fn a_reference_that_would_read_as_a_card_number_goes_to_suspense_and_never_stops_the_batch() {
    // A numeric prefix glued to a numeric CRM reference: sixteen digits that pass the card
    // checks (a test number, assembled here, so no file holds it whole).
    let (prefix, rest) = ("4111", "111111111111");
    let mut codes = codes(&format!("{prefix}{{request_ref}}"));
    codes.service_name = format!("Permits {prefix}");
    let mut payment = source(LineKind::Payment, 1200, &[]);
    payment.request_ref = rest.to_owned();
    let row = posting_row(&payment, &codes, "SUSPENSE", &FieldLimits::LOCALGOV_IMS, 1);
    assert_eq!(
        (row.account_reference.as_str(), row.unallocated),
        ("SUSPENSE", true)
    );
    assert!(
        !crate::domain::card_guard::contains_card_number(&row.narrative),
        "{}",
        row.narrative
    );
    // An ordinary reference is untouched.
    payment.request_ref = "CRM-42".into();
    let row = posting_row(&payment, &codes, "SUSPENSE", &FieldLimits::LOCALGOV_IMS, 1);
    assert_eq!(
        (row.account_reference.as_str(), row.unallocated),
        ("4111CRM-42", false)
    );
}
