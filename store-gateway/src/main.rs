//! `strata-store-gateway` binary: parses flags (accepting Thanos's `store` subcommand word), sets
//! up logging and signals, and runs the store gateway library.

use std::process::ExitCode;

use clap::Parser;
use strata_common::flags::args_without_subcommand;
use strata_common::shutdown::run_service;
use strata_store_gateway::{Config, SUBCOMMAND, run};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse_from(args_without_subcommand(SUBCOMMAND));
    let log = config.log.clone();
    run_service(&log, "store node", |shutdown| run(config, shutdown)).await
}
