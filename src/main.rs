fn main() -> std::process::ExitCode {
    // First, before any thread starts: no child process may inherit a DROPKEY_SECRET_* key.
    dropkey_core::secrets::capture_env();
    dropkey::cli::main()
}
