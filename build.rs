//! Embeds `migrations/{postgres,sqlite}/*.sql` into the binary, so a deployed `counterfoil`
//! migrates its database with no files beside it.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let mut code = String::new();
    for backend in ["postgres", "sqlite"] {
        let dir = Path::new("migrations").join(backend);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|entry| entry.expect("readable directory entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
            .collect();
        files.sort();
        writeln!(
            code,
            "pub const {}: &[(i64, &str, &str)] = &[",
            backend.to_uppercase()
        )
        .unwrap();
        for path in files {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let (version, description) = name.split_once('_').unwrap_or_else(|| {
                panic!("migration {name} must be named <version>_<description>.sql")
            });
            let version: i64 = version
                .parse()
                .unwrap_or_else(|_| panic!("migration {name} must start with a number"));
            let absolute = std::fs::canonicalize(&path).unwrap();
            writeln!(
                code,
                "    ({version}, {:?}, include_str!({:?})),",
                description.replace('_', " "),
                absolute.display().to_string()
            )
            .unwrap();
        }
        writeln!(code, "];").unwrap();
    }
    std::fs::write(Path::new(&out).join("migrations.rs"), code).unwrap();
}
