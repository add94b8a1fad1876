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
