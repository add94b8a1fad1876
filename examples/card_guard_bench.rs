//! The card-number detector scored on its two corpora, run by hand (the test suite scores a
//! sample of each):
//!
//!     cargo run --release --example card_guard_bench -- [council strings] [card numbers] [seed]
//!
//! Generates council text that is not a card number (default 100,000 strings, every kind in
//! turn) and card numbers written every way people and systems write them (default 100,000),
//! runs `contains_card_number` on each, and prints per kind: how many, how many are card-shaped
//! (a value in them that is a card number as written: counted apart, as no detector can tell them
//! from one), and how many of the rest were refused; for cards, how many were missed. Then
//! precision and recall, and the detector's speed against a baseline measured in the same run
//! (reading every string's characters once).

#[path = "../tests/api/support/card_corpus/mod.rs"]
mod card_corpus;

use std::collections::BTreeMap;
use std::time::Instant;

use counterfoil::domain::card_guard::contains_card_number;

fn main() {
    let arg = |n: usize, default: usize| -> usize {
        std::env::args()
            .nth(n)
            .and_then(|a| a.replace('_', "").parse().ok())
            .unwrap_or(default)
    };
    let council_count = arg(1, 100_000);
    let card_count = arg(2, 100_000);
    let seed = arg(3, 2026) as u64;

    let council = card_corpus::council(seed, council_count);
    let cards = card_corpus::cards(seed + 1, card_count);

    // Baseline: every character of every string read once, in the same run.
    let started = Instant::now();
    let chars: usize = council
        .iter()
        .chain(&cards)
        .map(|s| std::hint::black_box(s.text.chars().filter(|c| c.is_numeric()).count()))
        .sum();
    let baseline = started.elapsed();

    let started = Instant::now();
    let council_refused: Vec<bool> = council
        .iter()
        .map(|s| contains_card_number(&s.text))
        .collect();
    let card_found: Vec<bool> = cards
        .iter()
        .map(|s| contains_card_number(&s.text))
        .collect();
    let detector = started.elapsed();

    #[derive(Default)]
    struct Row {
        strings: usize,
        card_shaped: usize,
        card_shaped_refused: usize,
        refused: usize,
    }
    let mut rows: BTreeMap<&str, Row> = BTreeMap::new();
    let mut false_refusals = Vec::new();
    for (sample, refused) in council.iter().zip(&council_refused) {
        let row = rows.entry(sample.kind).or_default();
        row.strings += 1;
        if sample.card_shaped {
            row.card_shaped += 1;
            row.card_shaped_refused += usize::from(*refused);
        } else if *refused {
            row.refused += 1;
            false_refusals.push(&sample.text);
        }
    }
    println!("Council text that is not a card number: {council_count} strings (seed {seed})");
    println!(
        "{:<22} {:>8} {:>12} {:>9} {:>9}",
        "kind", "strings", "card-shaped", "refused", "rate"
    );
    for (kind, row) in &rows {
        println!(
            "{kind:<22} {:>8} {:>12} {:>9} {:>8.3}%",
            row.strings,
            row.card_shaped,
            row.refused,
            100.0 * row.refused as f64 / (row.strings - row.card_shaped).max(1) as f64
        );
    }
    let shaped: usize = rows.values().map(|r| r.card_shaped).sum();
    let shaped_refused: usize = rows.values().map(|r| r.card_shaped_refused).sum();
    let refused = false_refusals.len();
    let judged = council_count - shaped;
    println!(
        "card-shaped: {shaped} of {council_count} ({:.3}%), {shaped_refused} of them refused",
        100.0 * shaped as f64 / council_count as f64
    );
    println!(
        "refused, not card-shaped: {refused} of {judged} ({:.4}%; the aim is at most 0.01%)",
        100.0 * refused as f64 / judged.max(1) as f64
    );
    for text in false_refusals.iter().take(20) {
        println!("  refused: {text:?}");
    }

    let mut missed: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    for (sample, found) in cards.iter().zip(&card_found) {
        let row = missed.entry(sample.kind).or_default();
        row.0 += 1;
        if !found {
            row.1 += 1;
            misses.push(sample);
        }
    }
    println!();
    println!(
        "Card numbers as people and systems write them: {card_count} (seed {})",
        seed + 1
    );
    for (kind, (count, miss)) in &missed {
        println!("{kind:<22} {count:>8} written, {miss} missed");
    }
    for sample in misses.iter().take(20) {
        println!("  missed: {} {:?}", sample.detail, sample.text);
    }
    let found = card_found.iter().filter(|f| **f).count();
    // Precision over everything refused: the cards found, against the council strings refused
    // that were not card-shaped.
    let precision = found as f64 / (found + refused).max(1) as f64;
    let recall = found as f64 / card_count.max(1) as f64;
    println!();
    println!(
        "precision {precision:.6}  recall {recall:.6}  missed {}  falsely refused {refused}",
        misses.len()
    );
    let strings = council.len() + cards.len();
    println!(
        "speed: {:.0} strings/s ({:.2} µs each), {:.1}x the baseline that reads each character once ({chars} digits seen)",
        strings as f64 / detector.as_secs_f64(),
        detector.as_secs_f64() * 1e6 / strings as f64,
        detector.as_secs_f64() / baseline.as_secs_f64().max(1e-9),
    );
}
