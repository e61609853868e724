//! Placeholder: filled by the owner of this command group.
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum BlockCommand {}

pub fn run(command: BlockCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
