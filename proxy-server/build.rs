//! Compiles containerd's Content and Snapshots service definitions (our wire-identical copies in
//! `proto/`) with protoc from the system.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/containerd/services/content/v1/content.proto",
        "proto/containerd/services/snapshots/v1/snapshots.proto",
    ];
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(&protos, &["proto"])?;
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    println!("cargo:rerun-if-changed=proto/containerd/types/mount.proto");
    Ok(())
}
