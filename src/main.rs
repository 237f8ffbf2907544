//! The `imipd` binary: a thin shell around [`imipd::cli`].

// mimalloc instead of the system allocator: calcard's parser allocates many small values, and
// with glibc's malloc about a fifth of a parse went to allocating and freeing them (measured
// in PERFORMANCE.md, "Parsers").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    imipd::cli::main()
}
