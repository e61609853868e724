//! Placeholder: filled by the owner of this command group.
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum StoreCommand {}

pub async fn run(command: StoreCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
