//! `dropkey doctor`: the CLI face of [`dropkey_core::doctor`].

use std::io::Write as _;

use clap::Args;

use super::{output, Cli};
use crate::Error;
use dropkey_core::config::{Config, Paths};
use dropkey_core::doctor::{self, Status};

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Also check that every profile's upload host answers (done anyway while uploads wait).
    #[arg(long)]
    network: bool,
}

pub fn run(cli: &Cli, args: &DoctorArgs) -> Result<(), Error> {
    let paths = Paths::resolve(cli.config.clone(), cli.data_dir.clone())?;
    let config = Config::load(&paths);
    let report = doctor::check(
        &paths,
        config.as_ref(),
        dropkey_core::unix_now(),
        args.network,
    );
    if args.json {
        output::json_line(&serde_json::to_value(&report).unwrap_or_default());
    } else {
        let mut out = std::io::stdout().lock();
        for check in &report.checks {
            let mark = match check.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            let _ = writeln!(out, "[{mark}] {}: {}", check.name, check.detail);
            if let Some(fix) = &check.fix {
                let _ = writeln!(out, "       fix: {fix}");
            }
        }
        let _ = writeln!(
            out,
            "{}",
            if report.ok {
                "Everything Dropkey needs is in place."
            } else {
                "Dropkey cannot work until the FAIL lines above are fixed."
            }
        );
    }
    if report.ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "doctor found {} problem(s); see the report above",
            report
                .checks
                .iter()
                .filter(|c| c.status == Status::Fail)
                .count()
        )))
    }
}
