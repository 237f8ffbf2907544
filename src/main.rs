//! The `imipd` binary: a thin shell around [`imipd::cli`].

fn main() -> std::process::ExitCode {
    imipd::cli::main()
}
