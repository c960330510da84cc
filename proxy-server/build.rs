//! Compiles containerd's service definitions (our wire-identical copies in `proto/`) with protoc
//! from the system.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/containerd/services/content/v1/content.proto",
        "proto/containerd/services/snapshots/v1/snapshots.proto",
        "proto/containerd/services/version/v1/version.proto",
        "proto/containerd/services/introspection/v1/introspection.proto",
        "proto/containerd/services/namespaces/v1/namespace.proto",
        "proto/containerd/services/images/v1/images.proto",
        "proto/containerd/services/leases/v1/leases.proto",
        "proto/containerd/services/containers/v1/containers.proto",
        "proto/containerd/services/events/v1/events.proto",
        "proto/containerd/services/diff/v1/diff.proto",
        "proto/containerd/events/events.proto",
        "proto/containerd/events/image.proto",
        "proto/containerd/events/task.proto",
        "proto/containerd/services/tasks/v1/tasks.proto",
    ];
    tonic_prost_build::configure()
        // A Write's data is taken from the received message's buffer, not copied out of it.
        .bytes(".containerd.services.content.v1.WriteContentRequest.data")
        .build_server(true)
        .build_client(true)
        .compile_protos(&protos, &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
