//! Prints the scan report of each file named on the command line, as JSON.

use modelgate_scan::{Limits, scan};
use std::fs::File;

fn main() -> anyhow::Result<()> {
    for path in std::env::args().skip(1) {
        let file = File::open(&path)?;
        let name = path.rsplit('/').next().unwrap_or_default();
        let report = scan(file, name, &Limits::default());
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}
