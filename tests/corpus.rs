//! A slice of the generated development corpus, one series per family,
//! written by `tidewatch corpus` and scored by `tidewatch eval nab` with
//! the shipped NAB settings: the whole path runs, and detection on it does
//! not fall below what it was when the corpus was introduced.

mod support;

/// The standard output of a tidewatch command that succeeds.
fn stdout_of(args: &[&str]) -> String {
    let output = support::tidewatch(args);
    assert!(output.status.success(), "{}", support::stderr(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_slice_of_the_corpus_is_scored_with_nab_rules() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    stdout_of(&["corpus", "--out", &out, "--series", "6", "--seed", "5"]);
    let report = stdout_of(&[
        "eval",
        "nab",
        "--data",
        &format!("{out}/data"),
        "--labels",
        &format!("{out}/labels/combined_windows.json"),
    ]);
    let standard = report
        .lines()
        .find(|l| l.starts_with("standard"))
        .unwrap_or_else(|| panic!("no standard profile in {report}"));
    let fields: Vec<&str> = standard.split_whitespace().collect();
    let score: f64 = fields[1].parse().unwrap();
    let (detected, windows) = fields[3].split_once('/').unwrap();
    let (detected, windows): (usize, usize) = (detected.parse().unwrap(), windows.parse().unwrap());
    assert_eq!(windows, 7, "{report}");
    // At introduction the slice scored 66.82 with 5 of 7 windows found.
    assert!(score >= 50.0, "{report}");
    assert!(detected >= 4, "{report}");
}
