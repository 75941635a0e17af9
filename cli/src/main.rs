//! The `attnflow` command-line tool. The library has no CLI dependencies; this binary adds
//! argument parsing (clap), progress bars (indicatif) and `anyhow` at the edge.

mod cli;

fn main() {
    // Mesa's Vulkan drivers print "XDG_RUNTIME_DIR is invalid" on headless machines where it
    // is unset; point it at the temporary folder before any thread starts.
    #[cfg(target_os = "linux")]
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    std::process::exit(cli::main());
}
