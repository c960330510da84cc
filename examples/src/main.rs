//! `strata-tmpfs-proxy`: Strata's daemon (`strata-proxy`, same flags) serving `strata-tmpfs`
//! beside the built-in backends.

use strata_example_tmpfs::{NAME, open};
use strata_proxy::{Host, Server};

fn main() -> std::process::ExitCode {
    Server::builder()
        .backend(NAME, |host: &Host| open(host.dir()))
        .main()
}
