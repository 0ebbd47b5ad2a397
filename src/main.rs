//! The `liandong` binary: parse the command line, set up logging, run, report errors.
use clap::Parser;
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use liandong::cli::{run, Cli, Command};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    liandong::memory::set_release(|| {
        // SAFETY: `mi_collect` takes no arguments that point anywhere and may be called from
        // any thread at any time; `true` makes it return freed memory without waiting.
        unsafe { libmimalloc_sys::mi_collect(true) }
    });
    let cli = Cli::parse();
    // A running node logs its lifecycle at info; one-shot commands stay quiet but for warnings.
    let default = match cli.command {
        Command::Serve(_) => "warn,liandong=info",
        _ => "warn",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colour only for a person at a terminal, never into a log file.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    if cli.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A gRPC status from the local node carries the node's own explanation.
            match e.downcast_ref::<tonic::Status>() {
                Some(s) => eprintln!("error: {}", s.message()),
                None => eprintln!("error: {}", liandong::error::chain(e.as_ref())),
            }
            std::process::ExitCode::FAILURE
        }
    }
}
