//! The `drover` binary: parses the command line and runs the chosen command.

mod cli;
mod commands;
mod datadir;
mod gateway;
mod https;
mod jobs;
mod observability;
mod pki;
mod serve;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Several crates in the graph enable different rustls providers; choosing one explicitly
    // avoids rustls refusing to pick.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => {
            observability::init_logging(args.log_format);
            runtime.block_on(serve::run(args))
        }
        Command::Info(args) => commands::info(args),
        Command::Keys { command } => runtime.block_on(commands::keys(command)),
        Command::Presign(args) => runtime.block_on(commands::presign(args)),
    }
}
