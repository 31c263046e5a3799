//! `cwctl completion SHELL`: the shell completion script for every verb and flag of `cwctl`,
//! generated from the same clap command tree the binary parses with (so it never drifts).
use std::io::Write;

/// Arguments of `cwctl completion`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Install, for example:
  bash: cwctl completion bash > /etc/bash_completion.d/cwctl
  zsh:  cwctl completion zsh > \"${fpath[1]}/_cwctl\"
  fish: cwctl completion fish > ~/.config/fish/completions/cwctl.fish")]
pub struct Args {
    /// The shell to generate the script for.
    #[arg(value_enum)]
    shell: Shell,
}

/// The shells `cwctl completion` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Shell {
    /// Bash (with the bash-completion package).
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
}

/// Writes the completion script of `command` for the chosen shell to `out`.
pub fn run(args: &Args, command: &mut clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, command, "cwctl", out);
    out.flush()
}
