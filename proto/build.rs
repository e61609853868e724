//! Compiles the StoreAPI, Info, hints, Prometheus remote-read and gRPC health protobufs with
//! `protox` (a pure-Rust protobuf compiler, so no system `protoc` is needed) and generates
//! prost messages plus tonic clients and servers into OUT_DIR.

use std::io;

const PROTOS: &[&str] = &[
    "proto/thanos/labels.proto",
    "proto/thanos/types.proto",
    "proto/thanos/rpc.proto",
    "proto/thanos/info.proto",
    "proto/hintspb/hints.proto",
    "proto/prometheus/types.proto",
    "proto/prometheus/remote.proto",
    "proto/grpc/health/v1/health.proto",
];

fn main() -> io::Result<()> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let file_descriptors = protox::compile(PROTOS, ["proto"]).map_err(io::Error::other)?;
    tonic_prost_build::configure()
        // Chunk payloads are the bulk of every Series stream: keep them as refcounted `Bytes`
        // so decoding a frame does not copy them.
        .bytes(".thanos.Chunk.data")
        .bytes(".prometheus.Chunk.data")
        .include_file("strata_proto_includes.rs")
        .compile_fds(file_descriptors)
}
