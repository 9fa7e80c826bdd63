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

/// ClassAd parsing and evaluation allocate many small objects; mimalloc
/// handles that pattern several times faster than glibc's allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
