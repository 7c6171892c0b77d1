//! `eddy`: inspect a job's checkpoints and savepoints on disk.

mod checkpoints;
mod savepoint;
mod table;
mod text;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Inspect eddy checkpoints and savepoints.
#[derive(Debug, Parser)]
#[command(name = "eddy", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The command groups.
#[derive(Debug, Subcommand)]
enum Command {
    /// Work with a job's checkpoint directory.
    #[command(subcommand)]
    Checkpoints(CheckpointsCommand),
    /// Work with a savepoint (or the newest valid checkpoint of a checkpoint directory).
    #[command(subcommand)]
    Savepoint(SavepointCommand),
}

/// `eddy checkpoints …`
#[derive(Debug, Subcommand)]
enum CheckpointsCommand {
    /// List every chk-* checkpoint in DIR, then every savepoint the job recorded there, with
    /// its status (verifying each), kind, creation time, size on disk and number of operators.
    List {
        /// The job's checkpoint directory.
        dir: PathBuf,
    },
}

/// `eddy savepoint …`
#[derive(Debug, Subcommand)]
enum SavepointCommand {
    /// Show a snapshot's job, id, kind, format and, per operator, its states.
    Info {
        /// A savepoint or checkpoint directory, or a job's checkpoint directory (then its
        /// newest valid checkpoint or recorded savepoint, as a restore would pick).
        path: PathBuf,
    },
    /// Verify every checksum; exit 0 if the snapshot is valid, 1 if not.
    Validate {
        /// A savepoint or checkpoint directory, or a job's checkpoint directory (then its
        /// newest valid checkpoint or recorded savepoint, as a restore would pick).
        path: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Checkpoints(CheckpointsCommand::List { dir }) => checkpoints::list(&dir),
        Command::Savepoint(SavepointCommand::Info { path }) => savepoint::info(&path),
        Command::Savepoint(SavepointCommand::Validate { path }) => savepoint::validate(&path),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("eddy: {error:#}");
            ExitCode::FAILURE
        }
    }
}
