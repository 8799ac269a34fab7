//! The tracker's CLI, built inside the test crate so integration tests can start it as a
//! process through `CARGO_BIN_EXE_switchyard-it`.
fn main() -> std::process::ExitCode {
    switchyard::cli::run()
}
