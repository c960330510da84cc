//! `strata-proxy --root DIR --address SOCKET`: see `strata-proxy --help`.

fn main() -> std::process::ExitCode {
    strata_proxy::Server::builder().main()
}
