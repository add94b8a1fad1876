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
        let defined = source.lines().any(|line| {
            let line = line.trim_start();
            [
                "fn ",
                "pub fn ",
                "async fn ",
                "pub async fn ",
                "pub(crate) fn ",
                "pub(crate) async fn ",
            ]
            .iter()
            .any(|start| {
                line.strip_prefix(start).is_some_and(|rest| {
                    rest.strip_prefix(function)
                        .is_some_and(|after| after.starts_with(['(', '<']))
                })
            })
        });
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
