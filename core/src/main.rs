/// mimalloc instead of the system allocator: the click path allocates small, short-lived
/// strings on every request, and glibc's malloc/free were 10-17 % of the server's CPU
/// (bench/RESULTS.md). Native plugins keep their own allocator (memory never crosses the ABI
/// boundary to be freed on the other side).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    switchyard::cli::run()
}
