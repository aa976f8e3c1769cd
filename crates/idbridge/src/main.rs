//! `idbridge`: see the crate README (`idbridge --help`).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = idbridge::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("idbridge: cannot start the async runtime: {e}");
            return ExitCode::from(idbridge::exit::FAILED);
        }
    };
    let result = runtime.block_on(async {
        let mut out = std::io::stdout();
        idbridge::run(cli, &mut out).await
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("idbridge: {}", idbridge::error::chain(&e));
            ExitCode::from(idbridge::exit::FAILED)
        }
    }
}
