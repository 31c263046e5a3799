//! `cwctl inspect`: this host's datapath instances as their pins show them: role, peer and
//! layout, the tables decoded (remaps, single-IP maps, Geneve routes and peers), the event
//! counters, drops by reason, and the attached programs with their devices.
//!
//! Nothing is locked or written: the pins are opened and read, so this works the same while the
//! owning daemon runs, and after it died.
mod read;
pub mod report;

use std::path::PathBuf;

use clusterwire_dataplane::PIN_ROOT;

use self::report::Report;

/// Arguments of `cwctl inspect`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when every instance was read in full; 1 when one could \
                        not be read in part (each problem is reported) or NAME is not pinned."
)]
pub struct Args {
    /// Only this instance (its directory under the pin root); every instance when omitted.
    name: Option<String>,
    /// Where instances are pinned.
    #[arg(long, default_value = PIN_ROOT)]
    pin_root: PathBuf,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// How `cwctl inspect` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    /// One block per instance, non-zero counters only.
    Text,
    /// Everything, every counter included, as one JSON object.
    Json,
}

/// Why `cwctl inspect` failed.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The named instance is not pinned.
    #[error("no instance {name:?} under {}", root.display())]
    NoInstance {
        /// The name asked for.
        name: String,
        /// The pin root.
        root: PathBuf,
    },
    /// Some instance could not be read in full (the report was printed).
    #[error("{0} instance(s) could not be read in full (see the problems above)")]
    Problems(usize),
    /// JSON serialization failed.
    #[error("printing the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Runs `cwctl inspect`.
pub fn run(args: &Args) -> Result<(), InspectError> {
    let names = match &args.name {
        Some(name) => {
            let dir = args.pin_root.join(name);
            if name.contains('/') || !dir.is_dir() {
                return Err(InspectError::NoInstance {
                    name: name.clone(),
                    root: args.pin_root.clone(),
                });
            }
            vec![name.clone()]
        }
        None => instance_names(&args.pin_root),
    };
    let report = Report {
        pin_root: args.pin_root.display().to_string(),
        instances: names
            .iter()
            .map(|n| read::instance(&args.pin_root.join(n), n))
            .collect(),
    };
    match args.output {
        Output::Text => print!("{}", report::text(&report)),
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    let bad = report
        .instances
        .iter()
        .filter(|i| !i.problems.is_empty())
        .count();
    if bad == 0 {
        Ok(())
    } else {
        Err(InspectError::Problems(bad))
    }
}

/// The instance directories under `root`, sorted (none when `root` does not exist).
fn instance_names(root: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut names: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}
