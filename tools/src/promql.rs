//! Placeholder: filled by the owner of this command group.
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum PromqlCommand {}

pub fn run(command: PromqlCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
