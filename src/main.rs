use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cloudburst::cli::Cli::parse();
    match cloudburst::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            eprintln!("cloudburst: {e:#}");
            ExitCode::from(1)
        }
    }
}
