//! `strata-shim serve --dir DIR --socket PATH --id ID --runc-root DIR --runc PATH`: see the crate docs.

mod serve;

use std::path::PathBuf;

fn usage() -> ! {
    eprintln!(
        "usage: strata-shim serve --dir DIR --socket PATH --id ID --runc-root DIR --runc PATH"
    );
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some("serve") {
        usage();
    }
    let (mut dir, mut socket, mut id, mut root, mut runc) = (None, None, None, None, None);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--dir" => dir = Some(PathBuf::from(value)),
            "--socket" => socket = Some(PathBuf::from(value)),
            "--id" => id = Some(value),
            "--runc-root" => root = Some(PathBuf::from(value)),
            "--runc" => runc = Some(PathBuf::from(value)),
            _ => usage(),
        }
    }
    let (Some(dir), Some(socket), Some(id), Some(root), Some(runc)) = (dir, socket, id, root, runc)
    else {
        usage()
    };
    let config = serve::Config {
        dir,
        socket,
        id,
        runc_root: root,
        runc,
    };
    if let Err(e) = serve::daemonize_and_serve(config) {
        eprintln!("strata-shim: {e}");
        std::process::exit(1);
    }
}
