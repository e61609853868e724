//! `strata-querier` binary: parses flags (accepting Thanos's `query` subcommand word), sets
//! up logging and signals, and runs the querier library.

use std::process::ExitCode;

use clap::Parser;
use strata_common::flags::args_without_subcommand;
use strata_common::shutdown::run_service;
use strata_querier::{Config, SUBCOMMAND, run};

/// mimalloc instead of glibc's malloc: per-thread free lists without arena locks or
/// consolidation passes (glibc spent ~9% of a range query's CPU in malloc/free).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args = args_without_subcommand(SUBCOMMAND);
    let mut config = Config::parse_from(args.clone());
    config.raw_args = args;
    let log = config.log.clone();
    run_service(&log, "query node", |shutdown| run(config, shutdown)).await
}
