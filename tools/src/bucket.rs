//! Placeholder: filled by the owner of this command group.
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum BucketCommand {}

pub async fn run(command: BucketCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
