//! `strata-ruler` binary: parses flags (accepting Thanos's `rule` subcommand word), sets up
//! logging and signals, and runs the ruler library.

use std::process::ExitCode;

use clap::Parser;
use strata_common::flags::args_without_subcommand;
use strata_common::shutdown::run_service;
use strata_ruler::{Config, SUBCOMMAND, run};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse_from(args_without_subcommand(SUBCOMMAND));
    let log = config.log.clone();
    run_service(&log, "rule", |shutdown| run(config, shutdown)).await
}
