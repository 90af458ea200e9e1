//! Every integration test lives in this one binary: a file (or a directory
//! with a `main.rs`) directly under `tests/` would be a test binary of its
//! own, linking the whole crate again and growing its own copy of the
//! harness.

#[test]
fn every_integration_test_is_a_module_of_this_binary() {
    let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut own_binaries: Vec<String> = std::fs::read_dir(&tests)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default();
            if p.is_dir() {
                name != "it" && p.join("main.rs").exists()
            } else {
                p.extension().is_some_and(|e| e == "rs")
            }
        })
        .map(|p| p.display().to_string())
        .collect();
    own_binaries.sort();
    assert!(
        own_binaries.is_empty(),
        "make these modules of tests/it/main.rs (helpers go to tests/it/support/): {own_binaries:?}"
    );
}
