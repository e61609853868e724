//! `strata-querier` binary: parses flags (accepting Thanos's `query` subcommand word), sets
//! up logging and signals, and runs the querier library.

use std::process::ExitCode;

use clap::Parser;
use strata_common::flags::args_without_subcommand;
use strata_common::shutdown::Shutdown;
use strata_common::telemetry;
use strata_querier::{Config, SUBCOMMAND, run};

#[tokio::main]
async fn main() -> ExitCode {
    let args = args_without_subcommand(SUBCOMMAND);
    let mut config = Config::parse_from(args.clone());
    config.raw_args = args;
    if let Err(err) = telemetry::init_logging(&config.log) {
        eprintln!("error: {err}");
        return ExitCode::FAILURE;
    }
    let shutdown = Shutdown::new();
    if let Err(err) = shutdown.cancel_on_signals() {
        tracing::error!(error = %err, "install signal handlers");
        return ExitCode::FAILURE;
    }
    match run(config, shutdown).await {
        Ok(()) => {
            tracing::info!("exiting");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!(error = %strata_common::error::error_chain(&err), "query node failed");
            ExitCode::FAILURE
        }
    }
}
