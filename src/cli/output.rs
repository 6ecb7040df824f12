//! Everything the CLI writes: JSON lines on stdout, one-line errors on stderr.

use std::io::Write as _;
use std::process::ExitCode;

use crate::Error;

/// Prints `value` as one JSON line. A closed stdout (`dropkey ... | head -0`) ends the process
/// quietly instead of panicking the way `println!` would.
pub fn json_line(value: &serde_json::Value) {
    let mut stdout = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut stdout, value)
        .map_err(std::io::Error::from)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    if written.is_err() {
        std::process::exit(0);
    }
}

pub fn error_line(err: &Error) {
    let _ = writeln!(std::io::stderr(), "error: {}", one_line(&err.to_string()));
}

/// Help and version go to stdout with exit 0; every other parse error becomes one line on stderr
/// with exit 2, instead of clap's multi-line usage block.
pub fn clap_error(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            ExitCode::SUCCESS
        }
        _ => {
            let rendered = err.render().to_string();
            let first = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            let tip = rendered
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("tip:"))
                .map(|t| format!(" ({t})"))
                .unwrap_or_default();
            let _ = writeln!(
                std::io::stderr(),
                "error: {first}{tip}; run `dropkey --help` for usage"
            );
            ExitCode::from(2)
        }
    }
}

fn one_line(text: &str) -> String {
    text.split('\n')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}
