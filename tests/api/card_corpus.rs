//! The detector scored on a sample of its two corpora (support/card_corpus.rs; the full run is
//! `cargo run --release --example card_guard_bench`): no council string that is not card-shaped
//! refused, no card number missed. The seeds are fixed, so the sample is the same every run.

use crate::support::card_corpus::{cards, council, Sample};
use counterfoil::domain::card_guard::{contains_card_number, redact, REDACTED};

const SAMPLE: usize = 6_000;

#[test]
fn no_council_string_in_the_sample_is_refused() {
    let council = council(2026, SAMPLE);
    let refused: Vec<&Sample> = council
        .iter()
        .filter(|s| !s.card_shaped && contains_card_number(&s.text))
        .collect();
    assert!(refused.is_empty(), "refused: {refused:#?}");
    let shaped = council.iter().filter(|s| s.card_shaped).count();
    assert!(
        shaped * 1_000 < SAMPLE,
        "card-shaped values stay rare: {shaped}"
    );
}

#[test]
fn no_card_number_in_the_sample_is_missed_and_each_is_removed_by_redaction() {
    let cards = cards(2027, SAMPLE);
    let missed: Vec<&Sample> = cards
        .iter()
        .filter(|s| !contains_card_number(&s.text))
        .collect();
    assert!(missed.is_empty(), "missed: {missed:#?}");
    for sample in &cards {
        let redacted = redact(&sample.text);
        assert!(
            !contains_card_number(&redacted),
            "{}: {redacted:?}",
            sample.detail
        );
        assert!(redacted.contains(REDACTED));
    }
}

#[test]
fn the_corpora_hold_what_they_say() {
    // Every kind of council value is generated, at least 10,000 strings when run in full.
    let council = council(1, 30_000);
    let kinds: std::collections::BTreeSet<&str> = council.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds.len(),
        crate::support::card_corpus::COUNCIL_KIND_NAMES.len()
    );
    // The card corpus writes whole numbers and numbers in groups, in many digit forms.
    let cards = cards(2, 2_000);
    assert!(cards.iter().any(|s| s.kind == "contiguous"));
    assert!(cards.iter().any(|s| s.kind == "in groups"));
    assert!(
        cards.iter().any(|s| s.text.contains('\u{2776}')
            || s.text.contains('\u{2780}')
            || s.text.contains('\u{278A}')
            || s.text.contains('\u{24F5}')),
        "dingbat digits are written"
    );
    assert!(cards
        .iter()
        .any(|s| s.detail.contains("every character JSON-escaped")));
    assert!(cards.iter().any(|s| s.detail.contains("percent-escaped")));
}
