//! `podvisor-agent`: PID 1 of every podvisor sandbox. See the crate documentation.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    std::process::exit(podvisor_agent::runtime::run(&args));
}
