//! `strata-tools`: the operator CLI for blocks, buckets, StoreAPI endpoints and PromQL tests,
//! in the spirit of `promtool` and `thanos tools`. Each command group lives in its own module;
//! this file only parses the command line and dispatches.

mod block;
mod bucket;
mod promql;
mod store;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "strata-tools",
    version,
    about = "Strata operator tools for blocks, buckets, StoreAPI endpoints and PromQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read, inspect and rewrite local Prometheus TSDB blocks.
    #[command(subcommand)]
    Block(block::BlockCommand),
    /// List and inspect the blocks in an object-storage bucket.
    #[command(subcommand)]
    Bucket(bucket::BucketCommand),
    /// Call any StoreAPI endpoint (Strata's or Thanos's).
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// PromQL utilities (conformance test runner).
    #[command(subcommand)]
    Promql(promql::PromqlCommand),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Block(cmd) => block::run(cmd),
        Command::Bucket(cmd) => bucket::run(cmd).await,
        Command::Store(cmd) => store::run(cmd).await,
        Command::Promql(cmd) => promql::run(cmd),
    };
    match result {
        Ok(code) => code,
        // A reader that stops early (`strata-tools block dump ... | head`) is not an error.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
