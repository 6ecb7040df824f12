fn main() -> std::process::ExitCode {
    dropkey::cli::main()
}
