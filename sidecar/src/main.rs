//! `strata-sidecar` binary: parses flags (accepting Thanos's `sidecar` subcommand word), sets
//! up logging and signals, and runs the sidecar library.

use std::process::ExitCode;

use clap::Parser;
use strata_common::flags::args_without_subcommand;
use strata_common::shutdown::Shutdown;
use strata_common::telemetry;
use strata_sidecar::{Config, SUBCOMMAND, run};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse_from(args_without_subcommand(SUBCOMMAND));
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
            tracing::error!(error = %strata_common::error::error_chain(&err), "sidecar failed");
            ExitCode::FAILURE
        }
    }
}
