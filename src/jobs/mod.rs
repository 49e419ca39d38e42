//! Offline batch jobs over files: replay scoring and benchmark evaluation.

pub mod demo;
pub mod nab;
pub mod score;
pub mod skab;
pub mod train;

use std::path::{Path, PathBuf};

/// Every `.csv` file below `dir`, sorted.
pub fn csv_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                collect(&path, out)?;
            } else if path.extension().is_some_and(|e| e == "csv") {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    collect(dir, &mut files)?;
    files.sort();
    Ok(files)
}
