//! `cwctl dataplane`: the instances pinned on this host (they outlive their daemons), their
//! attachments, and removing one whose owner is gone.
use std::path::PathBuf;

use anyhow::Context as _;
use clusterwire_dataplane::{Instance, PIN_ROOT, attach, features};

/// Arguments of `cwctl dataplane`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    /// Where instances are pinned.
    #[arg(long, global = true, default_value = PIN_ROOT)]
    pin_root: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List the pinned instances and what each has attached.
    List,
    /// Detach and remove an instance (waits for no one: fails if a process holds it).
    Destroy {
        /// The instance name (its directory under the pin root).
        name: String,
    },
    /// The kernel features the datapath uses, and which this kernel has.
    Features,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    match &args.command {
        Command::List => {
            list(args);
            Ok(())
        }
        Command::Destroy { name } => {
            Instance::destroy_by_name(&args.pin_root, name)
                .with_context(|| format!("destroying instance {name}"))?;
            println!("instance {name} removed");
            Ok(())
        }
        Command::Features => {
            let kernel = features::kernel().map_or_else(|| "unknown".to_owned(), |k| k.to_string());
            println!("kernel {kernel}");
            for f in features::FEATURES {
                let have = if features::available(f) {
                    "yes"
                } else {
                    "MISSING"
                };
                println!(
                    "{:<24} {have:<8} since {}.{}: {}",
                    f.name, f.since.0, f.since.1, f.used_for
                );
            }
            Ok(())
        }
    }
}

fn list(args: &Args) {
    let Ok(entries) = std::fs::read_dir(&args.pin_root) else {
        println!("no instances under {}", args.pin_root.display());
        return;
    };
    let mut names: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let dir = args.pin_root.join(&name);
        println!("{name}");
        for a in attach::attachments(&dir) {
            println!(
                "    {:<8} {:<8} {:?}",
                a.device,
                attach::direction_name(a.direction),
                a.mode
            );
        }
    }
}
