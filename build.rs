//! Compiles `proto/liandong/v1/*.proto` with protox (pure Rust), so that building needs no
//! system `protoc`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/liandong/v1/event.proto",
        "proto/liandong/v1/federation.proto",
        "proto/liandong/v1/committee.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    // The same descriptors, encoded, for gRPC server reflection (`grpcurl` without .proto files).
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("liandong_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .type_attribute(
            ".liandong.v1",
            "#[derive(serde::Serialize, serde::Deserialize)]",
        )
        .compile_fds(descriptors)?;
    Ok(())
}
