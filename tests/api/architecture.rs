//! ARCHITECTURE.md's flows name the code step by step as `file::function`; every one must exist,
//! so the document cannot drift from the code unnoticed.

use std::path::Path;

#[test]
fn every_step_architecture_md_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut checked = 0;
    let mut missing = Vec::new();
    for step in text
        .split('`')
        .filter(|s| s.starts_with("src/") && s.contains(".rs::"))
    {
        let (file, function) = step.split_once("::").unwrap();
        let source = std::fs::read_to_string(root.join(file))
            .unwrap_or_else(|_| panic!("ARCHITECTURE.md names {file}, which does not exist"));
        let defined = source
            .lines()
            .any(|line| defined_function(line).is_some_and(|name| name == function));
        if !defined {
            missing.push(step.to_owned());
        }
        checked += 1;
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names what the code does not have: {missing:?}"
    );
    assert!(
        checked >= 20,
        "the flows name their steps ({checked} found)"
    );
}

/// The name of the function a line starts, if it starts one (`pub(super) async fn name(`).
fn defined_function(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    while let Some(word) = words.next() {
        match word {
            "fn" => {
                let rest = words.next()?;
                let end = rest.find(['(', '<'])?;
                return Some(&rest[..end]);
            }
            w if w == "pub"
                || w.starts_with("pub(")
                || ["async", "const", "unsafe", "default"].contains(&w) => {}
            _ => return None,
        }
    }
    None
}

const MAX_FILE_LINES: usize = 600;
const MAX_FUNCTION_LINES: usize = 80;

fn rust_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Every function (in rustfmt's layout: its closing brace alone at its own indentation) as
/// (name, first line, length in lines), up to the file's unit tests.
fn functions(source: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = source.lines().collect();
    let end = lines
        .iter()
        .position(|line| line.trim() == "#[cfg(test)]")
        .unwrap_or(lines.len());
    let mut found = Vec::new();
    for (start, line) in lines[..end].iter().enumerate() {
        let Some(name) = defined_function(line) else {
            continue;
        };
        let indent = &line[..line.len() - line.trim_start().len()];
        // A declaration without a body ends in `;` before any `{`.
        let opens = lines[start..end]
            .iter()
            .position(|l| l.trim_end().ends_with('{') || l.trim_end().ends_with(';'))
            .map(|offset| start + offset);
        let Some(open) = opens.filter(|&i| lines[i].trim_end().ends_with('{')) else {
            continue;
        };
        let close = lines[open + 1..]
            .iter()
            .position(|l| {
                l.strip_prefix(indent)
                    .is_some_and(|rest| rest.starts_with('}'))
            })
            .map(|offset| open + 1 + offset);
        if let Some(close) = close {
            found.push((name.to_owned(), start + 1, close - start + 1));
        }
    }
    found
}

#[test]
fn no_room_is_too_big_to_find_your_way_in() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "examples"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut too_big = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        let shown = file.strip_prefix(root).unwrap().display().to_string();
        let lines = source.lines().count();
        if lines > MAX_FILE_LINES {
            too_big.push(format!("{shown}: {lines} lines"));
        }
        if !shown.starts_with("src") {
            continue;
        }
        for (name, line, length) in functions(&source) {
            if length > MAX_FUNCTION_LINES {
                too_big.push(format!("{shown}:{line} fn {name}: {length} lines"));
            }
        }
    }
    assert!(
        too_big.is_empty(),
        "files over {MAX_FILE_LINES} lines or functions over {MAX_FUNCTION_LINES} (outside tests):\n{}",
        too_big.join("\n")
    );
}

#[test]
fn the_function_finder_reads_rustfmt_layout() {
    let source = "pub(super) async fn short(\n    a: u8,\n) -> u8 {\n    a\n}\n\
                  trait T {\n    fn declared(&self);\n    fn body(&self) {\n        1;\n    }\n}\n\
                  #[cfg(test)]\nmod tests {\n    fn hidden() {\n    }\n}\n";
    assert_eq!(
        functions(source),
        vec![("short".to_owned(), 1, 5), ("body".to_owned(), 8, 3)]
    );
}

/// No file of the project holds a card number as people write them (13 to 19 digits, together
/// or in groups split by a space or a dash, Luhn-valid), not even a test one: tests build theirs
/// at run time (`helpers::fresh_pan`), and fixtures from elsewhere have theirs removed. (The
/// service's own detector reads far more disguises, and so too many of the numbers code is made
/// of, to scan source with.)
#[test]
fn no_file_of_the_project_holds_a_card_number() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        "src",
        "tests",
        "examples",
        "migrations",
        "openapi",
        "deploy",
        "docs",
        ".ci",
    ] {
        all_files(&root.join(dir), &mut files);
    }
    for top in ["README.md", "ARCHITECTURE.md", "Cargo.toml"] {
        files.push(root.join(top));
    }
    let holding: Vec<String> = files
        .iter()
        .filter(|file| {
            std::fs::read_to_string(file).is_ok_and(|text| written_card_numbers(&text) > 0)
        })
        .map(|file| file.strip_prefix(root).unwrap().display().to_string())
        .collect();
    assert!(files.len() > 100, "the project's files were read");
    assert!(
        holding.is_empty(),
        "these files hold a card number: {holding:?}"
    );
}

fn all_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all_files(&path, found);
        } else {
            found.push(path);
        }
    }
}

/// How many runs of 13 to 19 digits (together, or split by single spaces or dashes) pass the
/// Luhn check.
fn written_card_numbers(text: &str) -> usize {
    let mut found = 0;
    let mut digits = String::new();
    let mut previous_was_separator = false;
    // A run glued to letters (an id, a hash) is not a number someone wrote down.
    let mut glued = false;
    let mut previous = ' ';
    for c in text.chars().chain(std::iter::once('.')) {
        if c.is_ascii_digit() {
            if digits.is_empty() {
                glued = previous.is_alphabetic();
            }
            digits.push(c);
            previous_was_separator = false;
        } else if (c == ' ' || c == '-') && !digits.is_empty() && !previous_was_separator {
            previous_was_separator = true;
        } else {
            let standalone = !glued && !c.is_alphabetic();
            if standalone && (13..=19).contains(&digits.len()) && luhn(&digits) {
                found += 1;
            }
            digits.clear();
            previous_was_separator = false;
        }
        previous = c;
    }
    found
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

#[test]
fn the_file_scan_reads_card_numbers_as_people_write_them() {
    let pan = crate::helpers::fresh_test_pan();
    let grouped: Vec<String> = pan
        .as_bytes()
        .chunks(4)
        .map(|g| String::from_utf8(g.to_vec()).unwrap())
        .collect();
    assert_eq!(written_card_numbers(&format!("card: {pan};")), 1);
    assert_eq!(written_card_numbers(&grouped.join(" ")), 1);
    assert_eq!(written_card_numbers(&grouped.join("-")), 1);
    assert_eq!(
        written_card_numbers("VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"),
        0
    );
    assert_eq!(written_card_numbers("amount 4500, reference 12345"), 0);
    assert_eq!(
        written_card_numbers(&format!("id{pan}")),
        0,
        "glued to letters"
    );
}

/// Every way the process writes to the outside, where it may do so, and the guard there. A new
/// sink (a `println!` in a service, an HTTP client that is not the outbound one, SQL outside the
/// store, a metric registered elsewhere) turns this red until it is put behind a guard and listed.
/// The drills in `exits.rs` prove each guard works.
const SINKS: &[(&str, &[&str], &str)] = &[
    ("io::stderr", &["src/telemetry/mod.rs"], "logs: telemetry::redaction::RedactingMakeWriter"),
    ("io::stdout", &[], "logs go to stderr only"),
    ("println!", &["src/main.rs"], "the command line prints what the guarded store holds, keys it made, and counts"),
    ("eprintln!", &["src/main.rs"], "start-up errors from configuration, before logging exists"),
    ("sqlx::query", &["src/store/backend.rs", "src/store/guard.rs"], "the database: store::guard reads every bound value"),
    ("sqlx::raw_sql", &["src/store/migrations.rs"], "the grants: fixed SQL from the binary, for a role name checked to be an identifier"),
    ("get_or_create(", &["src/metrics.rs"], "metrics: bounded labels (method_label, route patterns), /metrics redacted"),
    ("opentelemetry_otlp", &["src/telemetry/mod.rs"], "traces: telemetry::redaction::RedactingExporter"),
    (
        "reqwest::Client::builder",
        &["src/outbound.rs", "src/console/sign_in.rs", "src/simulator/delivery.rs", "src/main.rs"],
        "outbound::OutboundClient checks each request; sign-in talks only to the configured identity provider with its own code and keys; the simulator is test-only; main's health probe sends nothing",
    ),
    ("File::create", &[], "no files are written"),
    ("OpenOptions", &[], "no files are written"),
    ("TcpStream", &[], "no raw sockets"),
    ("UdpSocket", &[], "no raw sockets"),
];

#[test]
fn every_sink_the_process_writes_to_is_where_its_guard_is() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(files.len() > 50, "the sources were read");
    let mut strays = Vec::new();
    for file in &files {
        let name = file.strip_prefix(root).unwrap().display().to_string();
        let text = std::fs::read_to_string(file).unwrap();
        // Unit tests may print and write as they like; only the shipped code is listed.
        let shipped = text.split("#[cfg(test)]").next().unwrap_or("");
        for (pattern, allowed, guard) in SINKS {
            if shipped.contains(pattern) && !allowed.contains(&name.as_str()) {
                strays.push(format!("{name}: {pattern} (allowed only where {guard})"));
            }
        }
    }
    assert!(strays.is_empty(), "sinks outside their guard: {strays:#?}");
}

/// The layers of ARCHITECTURE.md, each with the parts of the crate it may name (`crate::<part>`).
/// `{http, console} → edge, service → {providers, store}`, everything → `domain`; `startup` alone
/// chooses implementations and may name anything; the binary and the simulators are outside.
const LAYERS: &[(&str, &[&str])] = &[
    ("domain", &["domain"]),
    ("store", &["store", "domain"]),
    (
        "providers",
        &["providers", "domain", "outbound", "metrics", "telemetry"],
    ),
    (
        "service",
        &[
            "service",
            "domain",
            "store",
            "providers",
            "views",
            "metrics",
            "outbound",
            "config",
            "background",
            "telemetry",
        ],
    ),
    ("edge", &["edge", "service", "domain"]),
    (
        "http",
        &[
            "http",
            "edge",
            "service",
            "domain",
            "views",
            "config",
            "metrics",
            "telemetry",
        ],
    ),
    (
        "console",
        &["console", "edge", "service", "domain", "config"],
    ),
];

/// Crates a layer must not use at all.
const FOREIGN: &[(&str, &[&str])] = &[
    ("domain", &["actix_web", "sqlx", "reqwest"]),
    ("service", &["actix_web"]),
    ("store", &["actix_web", "reqwest"]),
];

/// Every `crate::<part>` a file names, outside its tests.
fn parts_named(source: &str) -> Vec<String> {
    let shipped = source.split("#[cfg(test)]").next().unwrap_or("");
    shipped
        .match_indices("crate::")
        .filter(|(at, _)| {
            // `crate::` itself, not `some_crate::`.
            !shipped[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '_')
        })
        .map(|(at, _)| {
            shipped[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn the_layers_point_one_way_as_architecture_md_draws_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut wrong = Vec::new();
    for (layer, allowed) in LAYERS {
        let mut files = Vec::new();
        rust_files(&root.join("src").join(layer), &mut files);
        assert!(!files.is_empty(), "src/{layer} was read");
        for file in files {
            let name = file.strip_prefix(root).unwrap().display().to_string();
            let text = std::fs::read_to_string(&file).unwrap();
            for part in parts_named(&text) {
                if !allowed.contains(&part.as_str()) {
                    wrong.push(format!("{name}: {layer} names crate::{part}"));
                }
            }
            let shipped = text.split("#[cfg(test)]").next().unwrap_or("");
            for (foreign_layer, crates) in FOREIGN {
                if foreign_layer == layer {
                    for krate in *crates {
                        if shipped.contains(&format!("{krate}::")) {
                            wrong.push(format!("{name}: {layer} uses {krate}"));
                        }
                    }
                }
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(wrong.is_empty(), "arrows the wrong way: {wrong:#?}");
}

#[test]
fn the_layer_reader_finds_crate_paths_and_nothing_else() {
    let source = "use crate::store::Store;\nlet x = other_crate::thing; crate::domain::refs::new_id(\"x\");\n#[cfg(test)]\nuse crate::http::X;";
    assert_eq!(parts_named(source), ["store", "domain"]);
}
